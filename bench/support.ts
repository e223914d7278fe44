/** What the benchmarks share: a fresh, migrated database per pass. */
import pg from 'pg';
import { loadConfig } from '../src/config.ts';
import { ensureDatabase, quoteIdentifier } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { createPool } from '../src/db/pool.ts';

/** Drops `database` on the server of `serverUrl` if it exists, creates it again, migrates it. */
export async function freshDatabase(serverUrl: string, database: string): Promise<string> {
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(database)} WITH (FORCE)`);
  await admin.end();
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  await ensureDatabase(url.toString());
  const pool = createPool(url.toString(), loadConfig({}, { secrets: 'unused' }).db, 'bench-migrate');
  await migrate(pool);
  await pool.end();
  return url.toString();
}
