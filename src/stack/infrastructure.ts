/**
 * Brings up what the service needs before it can run: a Kafka broker (the configured one, or a
 * local one from the Maven jars), the PostgreSQL database (created when missing), the
 * migrations, and the topics.
 */
import type { Config } from '../config.ts';
import { redactUrl } from '../db/database.ts';
import { resolveDatabaseUrl } from './database-url.ts';
import { migrate } from '../db/migrate.ts';
import { createPool } from '../db/pool.ts';
import {
  brokerSecurity,
  checkTopics,
  createKafka,
  ensureTopics,
  type TopicDrift,
  type TopicSpec,
} from '../kafka/client.ts';
import type { Logger } from '../log.ts';
import { startLocalKafka, type LocalKafka } from './local-kafka.ts';
import { startLocalPostgres, type LocalPostgres } from './local-postgres.ts';

export interface Infrastructure {
  readonly brokers: readonly string[];
  readonly databaseUrl: string;
  /** The broker this process started, if it started one. */
  readonly localKafka: LocalKafka | null;
  /** The PostgreSQL server this process started, if it started one. */
  readonly localPostgres: LocalPostgres | null;
}

/**
 * The service's topics and their settings. The command topic keeps everything by default
 * (retention.ms=-1): rebuilding the ledger from the log needs the whole log, and a finite
 * retention is how far back a rebuild can go. Replies and dead letters are for the moment.
 */
export function topicSpecs(config: Config): TopicSpec[] {
  const { topics } = config;
  const common = { replicationFactor: topics.replicationFactor };
  const isr = { 'min.insync.replicas': String(topics.minInsyncReplicas) };
  return [
    {
      topic: topics.commands,
      partitions: topics.commandPartitions,
      ...common,
      configs: {
        ...isr,
        'retention.ms': String(topics.retentionMs.commands),
        'retention.bytes': '-1',
        'cleanup.policy': 'delete',
      },
    },
    {
      topic: topics.replies,
      partitions: topics.replyPartitions,
      ...common,
      configs: { ...isr, 'retention.ms': String(topics.retentionMs.replies) },
    },
    {
      topic: topics.deadLetters,
      partitions: topics.commandPartitions,
      ...common,
      configs: { ...isr, 'retention.ms': String(topics.retentionMs.deadLetters) },
    },
    {
      // Keyed by user like the commands, so a user's events stay in order on one partition.
      topic: topics.events,
      partitions: topics.commandPartitions,
      ...common,
      configs: { ...isr, 'retention.ms': String(topics.retentionMs.events) },
    },
    {
      // Anchors are few (one an interval) and are what a third party checks history against: kept forever.
      topic: topics.anchors,
      partitions: 1,
      ...common,
      configs: { ...isr, 'retention.ms': '-1', 'retention.bytes': '-1' },
    },
  ];
}

/** Topics whose settings differ from the configuration; `fix` alters what can be altered. */
export async function checkTopicSettings(
  config: Config,
  brokers: readonly string[],
  log: Logger,
  fix: boolean,
): Promise<TopicDrift[]> {
  return checkTopics(
    createKafka({ brokers, clientId: config.kafka.clientId, log, ...brokerSecurity(config.kafka) }),
    topicSpecs(config),
    fix,
  );
}

export async function prepareInfrastructure(config: Config, log: Logger): Promise<Infrastructure> {
  // Both at once: the broker takes seconds to start, the database about one. If one fails, the
  // other is stopped before the failure is reported: a failed start leaves nothing running.
  const [kafkaStart, postgresStart] = await Promise.allSettled([
    config.kafka.brokers
      ? null
      : startLocalKafka({ ...config.kafka.local, readyWaitMs: config.kafka.readyWaitMs, log }),
    config.db.url ? null : startLocalPostgres({ ...config.db.local, log }),
  ]);
  const localKafka = kafkaStart.status === 'fulfilled' ? kafkaStart.value : null;
  const localPostgres = postgresStart.status === 'fulfilled' ? postgresStart.value : null;
  const failed = [kafkaStart, postgresStart].find((r) => r.status === 'rejected');
  if (failed) {
    await localKafka?.stop();
    await localPostgres?.stop();
    throw failed.reason;
  }
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
    const created = await ensureTopics(
      createKafka({ brokers, clientId: config.kafka.clientId, log, ...brokerSecurity(config.kafka) }),
      topicSpecs(config),
    );
    log.info({ brokers, created }, 'Kafka topics are ready');
    return { brokers, databaseUrl, localKafka, localPostgres };
  } catch (error) {
    await localKafka?.stop();
    await localPostgres?.stop();
    throw error;
  }
}
