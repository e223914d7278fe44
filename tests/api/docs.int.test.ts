import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { appWithoutKafka } from '../helpers/gateway.ts';
import { createTestDatabase, testConfig, type TestDatabase } from '../helpers/stack.ts';

/** Debian's chromium package; .ci/run installs it. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

describe('the /docs page in a real browser', () => {
  let db: TestDatabase;
  let browser: Browser;
  beforeAll(async () => {
    if (!existsSync(CHROMIUM))
      throw new Error(`no Chromium at ${CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH`);
    db = await createTestDatabase();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await db?.drop();
  });

  it('renders Swagger UI listing every endpoint', async () => {
    const app = appWithoutKafka(testConfig(db), db);
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const page = await browser.newPage();
      await page.goto(`${address}/docs`);
      await page.waitForSelector('.opblock-summary-path', { timeout: 30_000 });
      const paths = await page.$$eval('.opblock-summary-path', (nodes) =>
        nodes.map((node) => node.getAttribute('data-path') ?? node.textContent ?? ''),
      );
      const documented = Object.keys(((await app.inject({ url: '/openapi.json' })).json() as { paths: object }).paths);
      expect(documented.length).toBeGreaterThan(20);
      for (const path of documented)
        expect(
          paths.map((p) => p.replace(/\u200b/g, '')),
          path,
        ).toContain(path);
      expect(await page.title()).toBe('balance-service API');
    } finally {
      await app.close();
    }
  });
});
