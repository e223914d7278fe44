/**
 * The rates fetcher against a local HTTP server that serves a sample in the Central Bank's daily
 * format, then a malformed document, a slow answer, an oversized one and an error: each bad
 * answer leaves the stored rates exactly as the last good one left them.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RatesFetcher } from '../../src/fx/fetcher.ts';
import { listRates, setOperatorRate } from '../../src/fx/store.ts';
import { createTestDatabase, testLog, type TestDatabase } from '../helpers/stack.ts';

type Answer = { status: number; body: Buffer; delayMs?: number };

describe('the rates fetcher', () => {
  let db: TestDatabase;
  let server: http.Server;
  let url: string;
  let answer: Answer;
  let requests = 0;

  beforeAll(async () => {
    db = await createTestDatabase();
    server = http.createServer((_request, response) => {
      requests += 1;
      const { status, body, delayMs } = answer;
      const send = () => {
        response.writeHead(status, { 'content-type': 'application/xml; charset=windows-1251' });
        response.end(body);
      };
      if (delayMs) setTimeout(send, delayMs).unref();
      else send();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/scripts/XML_daily.asp`;
  });
  afterAll(async () => {
    server?.closeAllConnections();
    await new Promise((resolve) => server?.close(resolve));
    await db?.drop();
  });

  const fetcher = () =>
    new RatesFetcher({
      url,
      intervalMs: 3_600_000,
      timeoutMs: 500,
      responseBytesMax: 50_000,
      pool: db.pool,
      log: testLog,
    });
  const stored = async () => (await listRates(db.pool)).map((r) => [r.currency, r.units, r.rub, r.source, r.rateDate]);
  const sample = () => readFile(new URL('./fixtures/cbr-daily.xml', import.meta.url));

  it('stores every rate of a good document, with its date', async () => {
    answer = { status: 200, body: await sample() };
    expect(await fetcher().fetchOnce()).toEqual({ ok: true, date: '2026-12-05', currencies: 7 });
    expect(await stored()).toEqual([
      ['AUD', '1', '51.2345', 'cbr', '2026-12-05'],
      ['CNY', '1', '11.0521', 'cbr', '2026-12-05'],
      ['EUR', '1', '91.0478', 'cbr', '2026-12-05'],
      ['JPY', '100', '50.3412', 'cbr', '2026-12-05'],
      ['KWD', '1', '254.5678', 'cbr', '2026-12-05'],
      ['KZT', '100', '15.1234', 'cbr', '2026-12-05'],
      ['USD', '1', '78.2001', 'cbr', '2026-12-05'],
    ]);
  });

  it('keeps the last good rates through a malformed document, a slow answer, an oversized one and an error', async () => {
    const before = await stored();
    const bad: Array<[string, Answer]> = [
      [
        'malformed',
        { status: 200, body: await readFile(new URL('./fixtures/cbr-daily-malformed.xml', import.meta.url)) },
      ],
      ['slow', { status: 200, body: await sample(), delayMs: 2_000 }],
      ['oversized', { status: 200, body: Buffer.alloc(60_000, 'x') }],
      ['error', { status: 503, body: Buffer.from('maintenance') }],
      ['html', { status: 200, body: Buffer.from('<html>captcha</html>') }],
    ];
    for (const [name, bad_] of bad) {
      answer = bad_;
      const started = Date.now();
      const outcome = await fetcher().fetchOnce();
      expect([name, outcome.ok]).toEqual([name, false]);
      // The timeout (500 ms) bounds the slow one; it never waits for the 2 s answer.
      expect(Date.now() - started).toBeLessThan(1_500);
      expect(await stored()).toEqual(before);
    }
  });

  it('refuses a file dated more than two days ahead, and never lets an older file replace a newer rate', async () => {
    const before = await stored();
    const dated = async (date: string) =>
      Buffer.from((await sample()).toString('latin1').replace('Date="05.12.2026"', `Date="${date}"`), 'latin1');
    answer = { status: 200, body: await dated('01.01.2099') };
    expect(await fetcher().fetchOnce()).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/more than two days ahead/),
    });
    answer = { status: 200, body: await dated('04.12.2026') };
    expect(await fetcher().fetchOnce()).toMatchObject({ ok: true, date: '2026-12-04' });
    expect(await stored()).toEqual(before);
  });

  it("keeps an operator's rate against a file for an earlier day, and lets a file for a later day replace it", async () => {
    const moscowDay = (offsetDays: number) => {
      const [y, m, d] = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Moscow' })
        .format(new Date(Date.now() + offsetDays * 86_400_000))
        .split('-');
      return { cbr: `${d}.${m}.${y}`, iso: `${y}-${m}-${d}` };
    };
    const dated = async (date: string) =>
      Buffer.from((await sample()).toString('latin1').replace('Date="05.12.2026"', `Date="${date}"`), 'latin1');
    await setOperatorRate(db.pool, 'USD', '0.0108');
    const usd = async () => (await stored()).find(([currency]) => currency === 'USD');
    const operators = await usd();
    expect(operators?.slice(0, 4)).toEqual(['USD', '0.0108', '1', 'operator']);
    answer = { status: 200, body: await dated(moscowDay(-1).cbr) };
    expect(await fetcher().fetchOnce()).toMatchObject({ ok: true, date: moscowDay(-1).iso });
    expect(await usd()).toEqual(operators);
    answer = { status: 200, body: await dated(moscowDay(1).cbr) };
    expect(await fetcher().fetchOnce()).toMatchObject({ ok: true, date: moscowDay(1).iso });
    expect(await usd()).toEqual(['USD', '1', '78.2001', 'cbr', moscowDay(1).iso]);
  });

  it('fetches once for two overlapping calls, and stops cleanly', async () => {
    answer = { status: 200, body: await sample(), delayMs: 100 };
    const one = fetcher();
    const before = requests;
    const [a, b] = await Promise.all([one.fetchOnce(), one.fetchOnce()]);
    expect([a.ok, b.ok, requests - before]).toEqual([true, true, 1]);
    one.start();
    await one.stop();
  });
});
