import pg from 'pg';
import type { Config } from '../config.ts';

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

// BIGINT (int8) and NUMERIC come back as strings by default; money code converts them with BigInt
// explicitly, so leave that default alone rather than risk a silent float.

export function createPool(url: string, db: Config['db'], applicationName: string): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: db.poolConnectionsMax,
    statement_timeout: db.statementTimeoutMs,
    connectionTimeoutMillis: db.connectWaitMs,
    idleTimeoutMillis: 30_000,
    application_name: applicationName,
    // Our statements are named, so PostgreSQL may cache a generic plan per connection. One
    // made while a table was still empty (a fresh database) seq-scans it, and nothing replans
    // it until an ANALYZE, which never comes when autovacuum is off: the commands look-up
    // then read the whole table for every batch. Custom plans cost ~0.1 ms of planning and
    // always see the table as it is. The chunk functions, which run on every chunk, keep their
    // own plans instead (sql/0021_cached_chunk_plans.sql says how they stay probes by key).
    options: '-c plan_cache_mode=force_custom_plan',
  });
  // An idle client that loses its server emits 'error' on the pool; without a listener that
  // would crash the process. The next query gets a fresh connection.
  pool.on('error', () => {});
  // A client the pool is closing no longer has the pool's listener, and pool.end() resolves
  // before its socket is closed: a server that terminates it meanwhile (a DROP DATABASE ... WITH
  // (FORCE), a shutdown) sends FATAL 57P01 to a client nobody listens to, an uncaught error.
  pool.on('remove', (client) => client.on('error', () => {}));
  return pool;
}

/**
 * Runs `work` with one pooled connection. While a client is checked out, the pool no longer
 * listens for its errors, and a connection lost between two queries (a server restart, a cut
 * network) is emitted as an 'error' event that would otherwise crash the process; here it
 * only marks the client broken, so it is destroyed instead of returned to the pool, and the
 * query in flight (or the next one) fails as usual.
 */
export async function withClient<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient, markBroken: () => void) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  const markBroken = () => {
    broken = true;
  };
  client.on('error', markBroken);
  try {
    return await work(client, markBroken);
  } finally {
    client.off('error', markBroken);
    client.release(broken ? true : undefined);
  }
}

/** Runs `work` inside BEGIN/COMMIT on one connection, rolling back on any error. */
export function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, async (client, markBroken) => {
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      // A client whose ROLLBACK failed is in an unknown state; destroy it instead of pooling it.
      await client.query('ROLLBACK').catch(markBroken);
      throw error;
    }
  });
}
