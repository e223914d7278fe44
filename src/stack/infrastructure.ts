/**
 * Brings up what the service needs before it can run: a Kafka broker (the configured one, or a
 * local one from the Maven jars), the PostgreSQL database (created when missing), the
 * migrations, and the topics.
 */
import type { Config } from '../config.ts';
import { redactUrl, resolveDatabaseUrl } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { createPool } from '../db/pool.ts';
import { createKafka, ensureTopics, type TopicSpec } from '../kafka/client.ts';
import type { Logger } from '../log.ts';
import { startLocalKafka, type LocalKafka } from './local-kafka.ts';

export interface Infrastructure {
  readonly brokers: readonly string[];
  readonly databaseUrl: string;
  /** The broker this process started, if it started one. */
  readonly localKafka: LocalKafka | null;
}

export function topicSpecs(config: Config): TopicSpec[] {
  return [
    { topic: config.topics.commands, partitions: config.topics.commandPartitions },
    { topic: config.topics.replies, partitions: config.topics.replyPartitions },
    { topic: config.topics.deadLetters, partitions: config.topics.commandPartitions },
  ];
}

export async function prepareInfrastructure(config: Config, log: Logger): Promise<Infrastructure> {
  const localKafka = config.kafka.brokers ? null : await startLocalKafka({ ...config.kafka.local, readyWaitMs: config.kafka.readyWaitMs, log });
  try {
    const brokers = config.kafka.brokers ?? localKafka!.brokers;
    const databaseUrl = await resolveDatabaseUrl(config.db);
    const pool = createPool(databaseUrl, config.db, 'balance-migrate');
    try {
      const applied = await migrate(pool);
      log.info({ database: redactUrl(databaseUrl), applied }, 'PostgreSQL is ready');
    } finally {
      await pool.end();
    }
    const created = await ensureTopics(createKafka({ brokers, clientId: config.kafka.clientId, log }), topicSpecs(config));
    log.info({ brokers, created }, 'Kafka topics are ready');
    return { brokers, databaseUrl, localKafka };
  } catch (error) {
    await localKafka?.stop();
    throw error;
  }
}
