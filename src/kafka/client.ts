/**
 * The one place that knows kafkajs. The rest of the code asks this module for a client, topics
 * and readiness, so the library could be swapped (for @platformatic/kafka) behind it.
 */
import kafkajs from 'kafkajs';
import type { Logger } from '../log.ts';

const { Kafka, logLevel: KafkaLogLevel, Partitioners } = kafkajs;
export type Kafka = kafkajs.Kafka;
export type Producer = kafkajs.Producer;
export type Consumer = kafkajs.Consumer;
export type Admin = kafkajs.Admin;
export type KafkaMessage = kafkajs.KafkaMessage;
export type EachBatchPayload = kafkajs.EachBatchPayload;

/**
 * The murmur2 partitioner that the Java client also uses, chosen explicitly: per-user order
 * depends on every producer mapping a key to the same partition.
 */
export const javaCompatiblePartitioner = Partitioners.DefaultPartitioner;

export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly log: Logger;
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** How many times kafkajs retries a failed request, with its exponential backoff. */
  readonly retriesMax?: number;
}

export function createKafka(options: KafkaClientOptions): Kafka {
  return new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectionTimeoutMs ?? 3_000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    retry: { retries: options.retriesMax ?? 5, initialRetryTime: 100, maxRetryTime: 5_000 },
    logLevel: KafkaLogLevel.WARN,
    logCreator: pinoLogCreator(options.log.child({ component: 'kafkajs' })),
  });
}

/** The same kafkajs message is logged at most once per window; a dead broker otherwise floods the log. */
export const KAFKA_LOG_REPEAT_WINDOW_MS = 10_000;
const LOG_KEYS_TRACKED_MAX = 1_000;
const IDEMPOTENT_RETRIES_WARNING = 'Limiting retries for the idempotent producer may invalidate EoS guarantees';

function pinoLogCreator(log: Logger): kafkajs.logCreator {
  const lastLogged = new Map<string, { at: number; suppressed: number }>();
  return () =>
    ({ level, log: entry }) => {
      const { message, ...rest } = entry;
      // Our idempotent producers retry a bounded number of times on purpose (a request must not
      // hang); a command sent twice that way is deduplicated by its id, so this warning says
      // nothing an operator can act on.
      if (message === IDEMPOTENT_RETRIES_WARNING) return;
      const key = `${level}:${message}`;
      const now = Date.now();
      const seen = lastLogged.get(key);
      if (seen && now - seen.at < KAFKA_LOG_REPEAT_WINDOW_MS) {
        seen.suppressed += 1;
        return;
      }
      if (lastLogged.size >= LOG_KEYS_TRACKED_MAX) lastLogged.clear();
      lastLogged.set(key, { at: now, suppressed: 0 });
      const details = seen?.suppressed ? { ...rest, repeatsSuppressed: seen.suppressed } : rest;
      if (level === KafkaLogLevel.ERROR) log.error(details, message);
      else if (level === KafkaLogLevel.WARN) log.warn(details, message);
      else if (level === KafkaLogLevel.INFO) log.info(details, message);
      else log.debug(details, message);
    };
}

export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
}

/**
 * Creates the topics that are missing, with explicit partition counts (the broker never
 * auto-creates). A topic that exists with fewer partitions than asked is reported, not changed:
 * adding partitions moves keys and is an operator's decision.
 */
export async function ensureTopics(kafka: Kafka, specs: readonly TopicSpec[]): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((spec) => !existing.has(spec.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({ topic: spec.topic, numPartitions: spec.partitions, replicationFactor: -1 })),
      });
    }
    return missing.map((spec) => spec.topic);
  } finally {
    await admin.disconnect();
  }
}

/** Readiness: the admin client can describe the cluster within `timeoutMs`. */
export async function describeCluster(kafka: Kafka, timeoutMs: number): Promise<{ brokers: number; controller: number | null }> {
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    return await withTimeout(
      (async () => {
        await admin.connect();
        const cluster = await admin.describeCluster();
        return { brokers: cluster.brokers.length, controller: cluster.controller };
      })(),
      timeoutMs,
      'Kafka did not answer describeCluster',
    );
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

export async function withTimeout<T>(work: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
