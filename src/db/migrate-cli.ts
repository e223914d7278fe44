/** `npm run migrate`: applies pending migrations to the configured database and exits. */
import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { redactUrl } from './database.ts';
import { resolveDatabaseUrl } from '../stack/database-url.ts';
import { migrate } from './migrate.ts';
import { createPool } from './pool.ts';
import { runCli } from '../cli.ts';

await runCli(async () => {
  const config = loadConfig(process.env, { secrets: 'unused' });
  const log = createLogger({ level: config.logLevel, name: 'migrate' });
  const url = await resolveDatabaseUrl(config.db);
  const pool = createPool(url, config.db, 'balance-migrate');
  try {
    const applied = await migrate(pool);
    log.info({ database: redactUrl(url), applied }, applied.length ? 'migrations applied' : 'database is up to date');
  } finally {
    await pool.end();
  }
});
