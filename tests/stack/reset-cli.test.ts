/**
 * `npm run reset`: removes the local stack's data so the next `npm start` begins empty, and
 * refuses while a server of that stack (anything on its ports) still runs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../src/stack/local-kafka.ts';
import { freePort } from '../helpers/processes.ts';
import { uniqueSuffix } from '../helpers/stack.ts';

describe('npm run reset', () => {
  const dir = `.local/reset-test-${uniqueSuffix()}`;
  afterEach(async () => {
    await rm(path.join(REPO_ROOT, dir), { recursive: true, force: true });
  });

  async function reset(ports: { kafka: number; postgres: number }) {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/stack/reset-cli.ts'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        LOG_LEVEL: 'warn',
        KAFKA_LOCAL_DIR: `${dir}/kafka`,
        KAFKA_LOCAL_PORT: String(ports.kafka),
        POSTGRES_LOCAL_DIR: `${dir}/postgres`,
        POSTGRES_LOCAL_PORT: String(ports.postgres),
      },
    });
    return { status: run.status, output: run.stdout + run.stderr };
  }

  async function leftData(): Promise<string[]> {
    const files = [`${dir}/kafka/meta.properties`, `${dir}/postgres/PG_VERSION`, `${dir}/postgres.password`];
    for (const file of files) {
      await mkdir(path.dirname(path.join(REPO_ROOT, file)), { recursive: true });
      await writeFile(path.join(REPO_ROOT, file), 'x');
    }
    return files;
  }

  it('removes the broker data, the database data and its password', async () => {
    const files = await leftData();
    const run = await reset({ kafka: await freePort(), postgres: await freePort() });
    expect(run).toMatchObject({ status: 0, output: expect.stringContaining('empty ledger') });
    expect(files.filter((file) => existsSync(path.join(REPO_ROOT, file)))).toEqual([]);
  });

  it('refuses, and removes nothing, while something listens on the stack ports', async () => {
    const files = await leftData();
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const held = (server.address() as net.AddressInfo).port;
    try {
      const run = await reset({ kafka: await freePort(), postgres: held });
      expect(run.status).toBe(1);
      expect(run.output).toContain(`port ${held} is in use`);
      expect(files.filter((file) => existsSync(path.join(REPO_ROOT, file)))).toEqual(files);
    } finally {
      server.close();
    }
  });
});
