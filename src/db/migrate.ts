/**
 * Plain-SQL migrations, graphile-worker style: `sql/NNNN_name.sql`, applied in order, each in its
 * own transaction with its version row inserted first, and serialized across processes by an
 * advisory lock so two services starting at once cannot both apply the same file.
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type pg from 'pg';
import { withClient } from './pool.ts';

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));

/** An arbitrary, fixed key for pg_advisory_lock; any process migrating this database takes it. */
const MIGRATION_LOCK_KEY = 7_240_513_001;
const MIGRATION_FILE = /^(\d{4})_[a-z0-9_]+\.sql$/;

const SQL_CREATE_MIGRATIONS_TABLE = `
  CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`;
const SQL_APPLIED_VERSIONS = 'SELECT version FROM schema_migrations ORDER BY version';
const SQL_RECORD_VERSION = 'INSERT INTO schema_migrations (version, name) VALUES ($1, $2)';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export async function readMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.sql')).sort();
  const migrations: Migration[] = [];
  for (const file of files) {
    const match = MIGRATION_FILE.exec(file);
    if (!match) throw new Error(`migration file name must look like 0001_name.sql: ${file}`);
    const version = Number(match[1]);
    const previous = migrations.at(-1);
    if (previous && previous.version === version) throw new Error(`two migrations share version ${version}`);
    migrations.push({ version, name: file, sql: await readFile(path.join(dir, file), 'utf8') });
  }
  return migrations;
}

/** Applies every pending migration; returns the names it applied. */
export async function migrate(pool: pg.Pool, dir: string = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await readMigrations(dir);
  return withClient(pool, async (client) => {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(SQL_CREATE_MIGRATIONS_TABLE);
      const applied = new Set(
        (await client.query<{ version: number }>(SQL_APPLIED_VERSIONS)).rows.map((r) => r.version),
      );
      const done: string[] = [];
      for (const migration of migrations) {
        if (applied.has(migration.version)) continue;
        await applyOne(client, migration);
        done.push(migration.name);
      }
      return done;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  });
}

async function applyOne(client: pg.PoolClient, migration: Migration): Promise<void> {
  await client.query('BEGIN');
  try {
    // The version row goes first: a concurrent runner without the lock would fail here on the
    // primary key before running any of the file.
    await client.query(SQL_RECORD_VERSION, [migration.version, migration.name]);
    await client.query(migration.sql);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw new Error(`migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
  }
}
