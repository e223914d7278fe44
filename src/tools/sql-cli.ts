/**
 * npm run sql -- "<one SQL statement>"            read-only
 * npm run sql -- --write "<one SQL statement>"    may change the database
 *
 * Runs one statement on the service's database (DATABASE_URL, or the local one `npm start` runs)
 * and prints the rows as JSON lines, then the command and its row count. For an operator without
 * psql at hand, on the local stack above all. One statement only: it is sent as a prepared
 * statement, which PostgreSQL refuses to split; without --write it runs in a read-only transaction.
 */
import { parseArgs, runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { createPool, withClient } from '../db/pool.ts';
import { resolveDatabaseUrl } from '../stack/database-url.ts';

/** The most rows printed; the count after them says how many there were. */
const ROWS_SHOWN_MAX = 100;

await runCli(async () => {
  const args = parseArgs(process.argv.slice(2), { values: [], flags: ['write'] });
  const statement = args.positional.join(' ').trim();
  if (statement === '') throw new UsageError('usage: npm run sql -- [--write] "<one SQL statement>"');
  const config = loadConfig(process.env, { secrets: 'unused' });
  const pool = createPool(await resolveDatabaseUrl(config.db), config.db, 'balance-sql');
  try {
    const result = await withClient(pool, async (client) => {
      await client.query(args.flags.has('write') ? 'BEGIN' : 'BEGIN READ ONLY');
      try {
        const done = await client.query({ text: statement, values: [] });
        await client.query('COMMIT');
        return done;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
    for (const row of result.rows.slice(0, ROWS_SHOWN_MAX)) console.log(JSON.stringify(row));
    console.log(`${result.command} ${result.rowCount ?? 0}`);
  } finally {
    await pool.end();
  }
});
