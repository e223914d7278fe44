/**
 * What an integration test needs from the real services: its own database cloned from the
 * migrated template, its own topics, and a config pointing at both.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import pg from 'pg';
import { loadConfig, withOverrides, type Config } from '../../src/config.ts';
import { quoteIdentifier } from '../../src/db/database.ts';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { createKafka, ensureTopics, type Kafka } from '../../src/kafka/client.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import { createCommandWorker, type CommandWorker } from '../../src/consumer/worker.ts';
import { topicSpecs } from '../../src/stack/infrastructure.ts';
import { databaseUrl } from './global-setup.ts';

export const testLog: Logger = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent', name: 'test' });

export function uniqueSuffix(): string {
  return randomBytes(4).toString('hex');
}

export interface TestDatabase {
  readonly url: string;
  readonly pool: Pool;
  drop(): Promise<void>;
}

/** A fresh, migrated database of this test run, cloned from the template in one statement. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const serverUrl = inject('databaseServerUrl');
  const name = `balance_test_${inject('testRunId')}_${uniqueSuffix()}`;
  await withAdminClient(serverUrl, (client) =>
    client.query(`CREATE DATABASE ${quoteIdentifier(name)} TEMPLATE ${quoteIdentifier(inject('databaseTemplate'))}`),
  );
  const url = databaseUrl(serverUrl, name);
  const pool = createPool(url, baseConfig().db, 'test');
  return {
    url,
    pool,
    drop: async () => {
      await pool.end();
      await withAdminClient(serverUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`),
      );
    },
  };
}

async function withAdminClient<T>(serverUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: databaseUrl(serverUrl, 'postgres') });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Secrets of the test runs only; processes the tests start get them through envFor. */
export const TEST_JWT_SECRET = 'test-only-jwt-secret-0123456789abcdefghij';
export const TEST_INTERNAL_COMMAND_SECRET = 'test-only-internal-command-secret-0123456789';
export const TEST_ANCHOR_SIGNING_KEY = 'test-only-anchor-signing-key-0123456789abc';

function baseConfig(): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    JWT_SECRET: TEST_JWT_SECRET,
    INTERNAL_COMMAND_SECRET: TEST_INTERNAL_COMMAND_SECRET,
    ANCHOR_SIGNING_KEY: TEST_ANCHOR_SIGNING_KEY,
  });
}

/** A config for one test: the provided broker, the given database, and topics of its own. */
export function testConfig(database: TestDatabase, patch: Parameters<typeof withOverrides>[1] = {}): Config {
  const suffix = uniqueSuffix();
  const config = withOverrides(baseConfig(), {
    db: { url: database.url },
    kafka: { brokers: inject('kafkaBrokers').split(',') },
    topics: {
      commands: `test.${suffix}.commands`,
      replies: `test.${suffix}.replies`,
      deadLetters: `test.${suffix}.commands.dlq`,
      events: `test.${suffix}.events`,
      anchors: `test.${suffix}.anchors`,
      replyPrefix: `test.${suffix}.replies.`,
      commandPartitions: 3,
      replyPartitions: 2,
    },
    consumer: { group: `test-${suffix}`, sessionTimeoutMs: 8_000 },
  });
  return withOverrides(config, patch);
}

export function testKafka(config: Config): Kafka {
  return createKafka({ brokers: config.kafka.brokers ?? [], clientId: 'test', log: testLog });
}

/** The topics setup creates for `config`, with the same settings. */
export async function createTestTopics(kafka: Kafka, config: Config): Promise<void> {
  await ensureTopics(kafka, topicSpecs(config));
}

/** Polls `check` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

export interface RunningStack {
  readonly db: TestDatabase;
  readonly config: Config;
  readonly kafka: Kafka;
  readonly worker: CommandWorker;
  stop(): Promise<void>;
}

/** A database, topics and a running consumer (or one not started yet): what most integration tests start from. */
export async function startStack(
  patch: Parameters<typeof withOverrides>[1] = {},
  options: { startWorker?: boolean } = {},
): Promise<RunningStack> {
  const db = await createTestDatabase();
  const config = testConfig(db, patch);
  const kafka = testKafka(config);
  await createTestTopics(kafka, config);
  const worker = createCommandWorker({ config, kafka, pool: db.pool, log: testLog });
  if (options.startWorker !== false) await worker.start();
  return {
    db,
    config,
    kafka,
    worker,
    stop: async () => {
      await worker.stop();
      await db.drop();
    },
  };
}

/** How many commands the database has decided, applied or rejected. */
/** Commands decided, not counting the settles the consumer derives from transfers. */
export async function countCommands(db: TestDatabase): Promise<number> {
  return (await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM commands WHERE type <> 'settle'")).rows[0]!
    .n;
}

/** The month (YYYY-MM) an instant falls in, in the reports' time zone (REPORT_TIME_ZONE). */
export function reportMonth(config: Config, at = new Date()): string {
  return new Intl.DateTimeFormat('en-CA', { timeZone: config.reports.timeZone, year: 'numeric', month: '2-digit' })
    .format(at)
    .slice(0, 7);
}

/**
 * A consumer's counter once it moved from `from`, or as it stands after `timeoutMs`: a chunk's
 * counts reach the worker's stats after its offset commit, which comes after its replies and
 * dead letters, so a test that has just seen those reads the counter through this.
 */
export async function counterAfter(read: () => number, from: number, timeoutMs = 10_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (read() === from && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  return read();
}
