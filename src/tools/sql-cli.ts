/**
 * npm run sql -- "<one SQL statement>": runs it on the service's database (DATABASE_URL, or the
 * local one `npm start` runs) and prints what it returned as JSON lines. For an operator without
 * psql at hand, on the local stack above all; it can change anything, as psql can.
 */
import { runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { createPool } from '../db/pool.ts';
import { resolveDatabaseUrl } from '../stack/database-url.ts';

/** The most rows printed; the count says how many there were. */
const ROWS_SHOWN_MAX = 100;

await runCli(async () => {
  const statement = process.argv.slice(2).join(' ').trim();
  if (statement === '') throw new UsageError('usage: npm run sql -- "<one SQL statement>"');
  const config = loadConfig(process.env, { secrets: 'unused' });
  const pool = createPool(await resolveDatabaseUrl(config.db), config.db, 'balance-sql');
  try {
    const result = await pool.query(statement);
    for (const row of result.rows.slice(0, ROWS_SHOWN_MAX)) console.log(JSON.stringify(row));
    console.log(`${result.command} ${result.rowCount ?? 0}`);
  } finally {
    await pool.end();
  }
});
