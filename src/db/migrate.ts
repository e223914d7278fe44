/**
 * Plain-SQL migrations, graphile-worker style: `sql/NNNN_name.sql`, applied in order, each in its
 * own transaction with its version row inserted first, and serialized across processes by an
 * advisory lock so two services starting at once cannot both apply the same file.
 *
 * Functions are not migrations: each lives in one file, `sql/functions/<name>.sql`, as a
 * `CREATE OR REPLACE FUNCTION`, so it has one home and a history in git instead of a new copy in
 * every migration that changes it. After the numbered files, every function file whose text
 * differs from the one last applied (kept by hash in `schema_functions`) is applied, all in one
 * transaction. A file that changes a function's signature drops the old one first.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
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
const SQL_CREATE_FUNCTIONS_TABLE = `
  CREATE TABLE IF NOT EXISTS schema_functions (
    name text PRIMARY KEY,
    sha256 text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`;
const SQL_FUNCTION_HASHES = 'SELECT name, sha256 FROM schema_functions';
const SQL_RECORD_FUNCTION = `
  INSERT INTO schema_functions (name, sha256) VALUES ($1, $2)
  ON CONFLICT (name) DO UPDATE SET sha256 = excluded.sha256, applied_at = now()`;
/** The folder of function files, inside the migrations folder. */
export const FUNCTIONS_SUBDIR = 'functions';
const FUNCTION_FILE = /^[a-z0-9_]+\.sql$/;

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

/** The function files of `dir`/functions, by name (`functions/<name>.sql`); none if the folder is missing. */
export async function readFunctionFiles(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const folder = path.join(dir, FUNCTIONS_SUBDIR);
  if (!existsSync(folder)) return [];
  const files = (await readdir(folder)).filter((file) => file.endsWith('.sql')).sort();
  const out: Migration[] = [];
  for (const file of files) {
    if (!FUNCTION_FILE.test(file)) throw new Error(`function file name must look like name.sql: ${file}`);
    out.push({ version: 0, name: `${FUNCTIONS_SUBDIR}/${file}`, sql: await readFile(path.join(folder, file), 'utf8') });
  }
  return out;
}

/** Applies every pending migration, then every changed function file; returns the names it applied. */
export async function migrate(pool: pg.Pool, dir: string = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await readMigrations(dir);
  const functions = await readFunctionFiles(dir);
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
      return [...done, ...(await applyFunctions(client, functions))];
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

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Applies the function files whose text changed since they were last applied, in one transaction. */
async function applyFunctions(client: pg.PoolClient, files: readonly Migration[]): Promise<string[]> {
  if (files.length === 0) return [];
  await client.query(SQL_CREATE_FUNCTIONS_TABLE);
  const applied = new Map(
    (await client.query<{ name: string; sha256: string }>(SQL_FUNCTION_HASHES)).rows.map((r) => [r.name, r.sha256]),
  );
  const changed = files.filter((file) => applied.get(file.name) !== sha256(file.sql));
  if (changed.length === 0) return [];
  await client.query('BEGIN');
  try {
    for (const file of changed) {
      await client.query(file.sql).catch((error: Error) => {
        throw new Error(`${file.name} failed: ${error.message}`, { cause: error });
      });
      await client.query(SQL_RECORD_FUNCTION, [file.name, sha256(file.sql)]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
  return changed.map((file) => file.name);
}
