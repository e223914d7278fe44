import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { migrate, readMigrations } from '../../src/db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/stack.ts';

describe('migrate', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('has applied every file of sql/ to the template, in order', async () => {
    const files = await readMigrations();
    const { rows } = await db.pool.query<{ version: number; name: string }>(
      'SELECT version, name FROM schema_migrations ORDER BY version',
    );
    expect(rows.map((row) => row.name)).toEqual(files.map((file) => file.name));
    expect(await migrate(db.pool)).toEqual([]);
  });

  it('applies new files once, even when two runners race', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'));
    await writeFile(path.join(dir, '0001_first.sql'), 'CREATE TABLE race_a (id int);');
    await writeFile(path.join(dir, '0002_second.sql'), 'CREATE TABLE race_b (id int);');
    const fresh = await createTestDatabase();
    try {
      await fresh.pool.query('DROP TABLE schema_migrations');
      const results = await Promise.all([migrate(fresh.pool, dir), migrate(fresh.pool, dir)]);
      expect(results.flat().sort()).toEqual(['0001_first.sql', '0002_second.sql']);
      const { rows } = await fresh.pool.query('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((row) => row.version)).toEqual([1, 2]);
    } finally {
      await fresh.drop();
    }
  });

  it('rolls back a failing file completely and records nothing for it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'));
    await writeFile(path.join(dir, '0001_ok.sql'), 'CREATE TABLE fine (id int);');
    await writeFile(path.join(dir, '0002_bad.sql'), 'CREATE TABLE half (id int); SELECT no_such_function();');
    const fresh = await createTestDatabase();
    try {
      await fresh.pool.query('DROP TABLE schema_migrations');
      await expect(migrate(fresh.pool, dir)).rejects.toThrow(/0002_bad\.sql failed/);
      const { rows } = await fresh.pool.query('SELECT version FROM schema_migrations');
      expect(rows.map((row) => row.version)).toEqual([1]);
      const half = await fresh.pool.query("SELECT to_regclass('half') AS t");
      expect(half.rows[0].t).toBeNull();
    } finally {
      await fresh.drop();
    }
  });

  it('refuses a file whose name is not NNNN_name.sql', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'));
    await writeFile(path.join(dir, 'create.sql'), 'SELECT 1;');
    await expect(readMigrations(dir)).rejects.toThrow(/0001_name\.sql/);
  });
});
