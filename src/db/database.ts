/**
 * The service's PostgreSQL database: created when missing (a server that does not answer gets
 * an error that says what to do), named in URLs, and shown in logs without its password. Which
 * server to use is decided above, by the stack (stack/database-url.ts).
 */
import { OperatorError } from '../cli.ts';
import pg from 'pg';
import { PG_ERROR, isUnreachable, pgErrorCode } from './errors.ts';

export class DatabaseUnavailableError extends OperatorError {
  override readonly name = 'DatabaseUnavailableError';
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
