/**
 * Which PostgreSQL database the service uses: DATABASE_URL when set, else the `balance`
 * database on the local server `npm start` runs (local-postgres.ts). Either is created when
 * missing. The stack decides it and hands the URL to db/.
 */
import { LOCAL_DATABASE_NAME, type Config } from '../config.ts';
import { DatabaseUnavailableError, databaseOn, ensureDatabase } from '../db/database.ts';
import { localPostgresServerUrl } from './local-postgres.ts';

export async function resolveDatabaseUrl(db: Config['db']): Promise<string> {
  const url = db.url ?? (await localDatabaseUrl(db.local));
  await ensureDatabase(url);
  return url;
}

/** The service's database on the local server; it exists once `npm start` has started that server. */
async function localDatabaseUrl(local: Config['db']['local']): Promise<string> {
  const server = await localPostgresServerUrl(local);
  if (!server) {
    throw new DatabaseUnavailableError(
      `DATABASE_URL is unset and no local PostgreSQL was ever started in ${local.dir}: run npm start (it starts one), or set DATABASE_URL`,
    );
  }
  return databaseOn(server, LOCAL_DATABASE_NAME);
}
