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
import { ensureDatabase, quoteIdentifier } from '../../src/db/database.ts';
import { migrate } from '../../src/db/migrate.ts';
import { createPool } from '../../src/db/pool.ts';
import { loadConfig } from '../../src/config.ts';
import { containerEngineAvailable, startKafkaContainer, startPostgresContainer } from './containers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string;
    databaseServerUrl: string;
    databaseTemplate: string;
    testRunId: string;
  }
}

const TEST_KAFKA_PORT = 39092;
const TEST_KAFKA_CONTROLLER_PORT = 39093;

export default async function setup(project: TestProject) {
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
      port: TEST_KAFKA_PORT,
      controllerPort: TEST_KAFKA_CONTROLLER_PORT,
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
  serverUrl ??= 'postgres://postgres@127.0.0.1:5432/postgres';

  const template = `balance_test_${runId}_tpl`;
  const templateUrl = databaseUrl(serverUrl, template);
  await ensureDatabase(templateUrl);
  const pool = createPool(templateUrl, loadConfig({}).db, 'test-setup');
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
    const { rows } = await client.query<{ datname: string }>(
      'SELECT datname FROM pg_database WHERE datname LIKE $1',
      [`balance_test_${runId}_%`],
    );
    for (const { datname } of rows) {
      await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(datname)} WITH (FORCE)`);
    }
  } finally {
    await client.end();
  }
}
