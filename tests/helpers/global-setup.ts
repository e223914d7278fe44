/**
 * Provides a real Kafka broker and a real PostgreSQL to the integration tests:
 *   1. KAFKA_BROKERS / DATABASE_URL when set;
 *   2. else testcontainers, when a container engine answers;
 *   3. else the same local stack as `npm start`: a broker from the Maven jars on its own ports,
 *      and the PostgreSQL at 127.0.0.1:5432, in throwaway databases.
 * A template database is migrated once; each test file clones its own from it.
 */
import type { TestProject } from 'vitest/node';
import type {} from 'vitest';
import pg from 'pg';
import { createLogger } from '../../src/log.ts';
import { startLocalKafka } from '../../src/stack/local-kafka.ts';
import { removeLocalPostgres, startLocalPostgres } from '../../src/stack/local-postgres.ts';
import { ensureDatabase, quoteIdentifier } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool } from '../../src/db/pool.ts';
import { loadConfig } from '../../src/config.ts';
import { freePort } from './processes.ts';
import { containerEngineAvailable, startKafkaContainer, startPostgresContainer } from './containers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
    databaseServerUrl: string;
    databaseTemplate: string;
    testRunId: string;
  }
}

const MACHINE_SERVER_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const TEST_POSTGRES_DIR = '.local/postgres-test';

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * Tests create and drop databases and topics: they refuse a target that is not clearly for
 * tests (a database whose name does not start with balance_test, a broker that is not local)
 * unless TEST_ALLOW_ANY_TARGET=true.
 */
export function refuseNonTestTargets(env: Record<string, string | undefined>): void {
  if (env.TEST_ALLOW_ANY_TARGET === 'true') return;
  if (env.DATABASE_URL) {
    const name = decodeURIComponent(new URL(env.DATABASE_URL).pathname.replace(/^\//, ''));
    if (!name.startsWith('balance_test'))
      throw new Error(
        `DATABASE_URL names database "${name}"; tests only run against one whose name starts with balance_test (or set TEST_ALLOW_ANY_TARGET=true)`,
      );
  }
  if (env.KAFKA_BROKERS) {
    const hosts = env.KAFKA_BROKERS.split(',').map((b) => b.slice(0, b.lastIndexOf(':')));
    if (hosts.some((h) => !['127.0.0.1', 'localhost', '::1', '[::1]'].includes(h)))
      throw new Error(
        `KAFKA_BROKERS=${env.KAFKA_BROKERS} is not a local broker; tests only run against one (or set TEST_ALLOW_ANY_TARGET=true)`,
      );
  }
}

export default async function setup(project: TestProject) {
  refuseNonTestTargets(process.env);
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'warn', name: 'test-setup' });
  const runId = `${process.pid}_${Date.now().toString(36)}`;
  const stops: Array<() => Promise<void>> = [];
  const useContainers = (!process.env.KAFKA_BROKERS || !process.env.DATABASE_URL) && (await containerEngineAvailable());

  let brokers = process.env.KAFKA_BROKERS;
  if (!brokers && useContainers) {
    const container = await startKafkaContainer();
    brokers = container.brokers;
    stops.push(container.stop);
  } else if (!brokers) {
    const broker = await startLocalKafka({
      dir: '.local/kafka-test',
      // Free ports, not fixed ones: two suites on one machine (two clones, a developer's run
      // beside CI's) once met on one port and broke each other's broker.
      ...(await twoFreePorts()),
      heapMb: 768,
      readyWaitMs: 120_000,
      fresh: true,
      log,
    });
    brokers = broker.brokers.join(',');
    stops.push(broker.stop);
  }

  let serverUrl = process.env.DATABASE_URL;
  if (!serverUrl && useContainers) {
    const container = await startPostgresContainer();
    serverUrl = container.url;
    stops.push(container.stop);
  }
  // The machine's own server is the faster default where one answers; otherwise the same
  // embedded server as npm start, in a fresh directory of its own.
  // TEST_POSTGRES=embedded skips the machine's server, to run the suite as on a machine without one.
  if (!serverUrl && process.env.TEST_POSTGRES !== 'embedded' && (await answers(MACHINE_SERVER_URL)))
    serverUrl = MACHINE_SERVER_URL;
  if (!serverUrl) {
    await removeLocalPostgres(TEST_POSTGRES_DIR, log);
    const local = await startLocalPostgres({ dir: TEST_POSTGRES_DIR, port: await freePort(), log });
    serverUrl = local.serverUrl;
    stops.push(local.stop);
  }

  const template = `balance_test_${runId}_tpl`;
  const templateUrl = databaseUrl(serverUrl, template);
  await ensureDatabase(templateUrl);
  const pool = createPool(templateUrl, loadConfig({}, { secrets: 'unused' }).db, 'test-setup');
  await migrate(pool);
  await pool.end();

  project.provide('kafkaBrokers', brokers);
  project.provide('databaseServerUrl', serverUrl);
  project.provide('databaseTemplate', template);
  project.provide('testRunId', runId);

  return async () => {
    await dropDatabasesOfRun(serverUrl, runId);
    for (const stop of stops.reverse()) await stop();
  };
}

export function databaseUrl(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function dropDatabasesOfRun(serverUrl: string, runId: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl(serverUrl, 'postgres') });
  await client.connect();
  try {
    const { rows } = await client.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [
      `balance_test_${runId}_%`,
    ]);
    for (const { datname } of rows) {
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(datname)} WITH (FORCE)`);
    }
  } finally {
    await client.end();
  }
}

/** Two different free ports for the broker and its controller (two calls may return one port). */
async function twoFreePorts(): Promise<{ port: number; controllerPort: number }> {
  const port = await freePort();
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort();
  return { port, controllerPort };
}
