/**
 * Finds the PostgreSQL database to use: DATABASE_URL when set, else the `balance` database on
 * the local server `npm start` runs (stack/local-postgres.ts). Either is created when missing. A
 * server that does not answer gets an error that says what to do.
 */
import { OperatorError } from '../cli.ts';
import pg from 'pg';
import { LOCAL_DATABASE_NAME, type Config } from '../config.ts';
import { localPostgresServerUrl } from '../stack/local-postgres.ts';
import { PG_ERROR, isUnreachable, pgErrorCode } from './errors.ts';

export class DatabaseUnavailableError extends OperatorError {
  override readonly name = 'DatabaseUnavailableError';
}

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

/** The URL of database `name` on the server of `serverUrl`. */
export function databaseOn(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(name)}`;
  return url.toString();
}

/** Creates the database named in `url` if it does not exist. Safe to race with another process. */
export async function ensureDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!name) throw new DatabaseUnavailableError(`DATABASE_URL names no database: ${redactUrl(url)}`);
  if (await canConnect(url)) return;
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 5_000 });
  // A connection lost mid-call rejects the call; without a listener the 'error' event would crash.
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
  } catch (error) {
    if (pgErrorCode(error) === PG_ERROR.DUPLICATE_DATABASE) return;
    throw explain(error, url);
  } finally {
    await client.end().catch(() => {});
  }
}

async function canConnect(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch (error) {
    if (pgErrorCode(error) === PG_ERROR.INVALID_CATALOG_NAME) return false;
    throw explain(error, url);
  } finally {
    await client.end().catch(() => {});
  }
}

function explain(error: unknown, url: string): Error {
  if (!isUnreachable(error)) return error as Error;
  const where = redactUrl(url);
  return new DatabaseUnavailableError(
    `no PostgreSQL server answers at ${where}. Start it (npm start runs the local one when ` +
      `DATABASE_URL is unset; or 'docker compose up postgres'), or set DATABASE_URL to a server you can reach.`,
    { cause: error },
  );
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** The URL without its password, for logs and error messages. */
export function redactUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}
