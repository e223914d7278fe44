/**
 * The one place that knows kafkajs. The rest of the code asks this module for a client, topics
 * and readiness, so the library could be swapped (for @platformatic/kafka) behind it.
 */
import { readFileSync } from 'node:fs';
import kafkajs from 'kafkajs';
import type { Logger } from '../log.ts';

const { Kafka, logLevel: KafkaLogLevel, Partitioners } = kafkajs;

/**
 * kafkajs 2.2.4 sets a timer with a negative delay each time a connection opens (its request
 * queue subtracts a timestamp from zero: tulios/kafkajs#1751, unreleased fix). Node 20 and 24
 * both run it after 1 ms; Node 24 also prints a TimeoutNegativeWarning to standard error, once
 * per process, into every operator command's output. That one warning, raised from kafkajs, is
 * dropped here; any other warning, or this one from anywhere else, is printed as before.
 */
export function isKafkajsNegativeTimeout(type: unknown, stack: string | undefined): boolean {
  return type === 'TimeoutNegativeWarning' && (stack ?? '').includes('/kafkajs/');
}

const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type;
  if (isKafkajsNegativeTimeout(type, new Error().stack)) return;
  (emitWarning as (...args: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;
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

/**
 * How every producer of the service (and of its tools and tests) is made.
 *
 * Not idempotent, on purpose. When a send fails, kafkajs's idempotent producer rolls the
 * partition's sequence number back, even if the broker did write the batch and only the answer
 * was lost. The next batch, with other messages, then reuses that number, and the broker takes
 * it for a repeat of the batch it has: it acknowledges it with that batch's offset and drops it.
 * A bank-test run lost an acknowledged command that way across a broker restart.
 *
 * Without idempotence, a retried batch may be written twice instead, which costs nothing here:
 * commands, settles and expires are deduplicated by id, replies by command id, and events carry
 * their event_id and sequence. One request in flight per broker keeps a producer's sends in order.
 */
export const PRODUCER_OPTIONS = {
  idempotent: false,
  maxInFlightRequests: 1,
  allowAutoTopicCreation: false,
  createPartitioner: javaCompatiblePartitioner,
} as const;

export interface KafkaClientOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly log: Logger;
  readonly connectionTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  /** How many times kafkajs retries a failed request, with its exponential backoff. */
  readonly retriesMax?: number;
  /** TLS to the broker: files of the CA, and of a client certificate and key for mutual TLS. */
  readonly ssl?: {
    readonly caFile: string | null;
    readonly certFile: string | null;
    readonly keyFile: string | null;
    readonly rejectUnauthorized: boolean;
  } | null;
  readonly sasl?: {
    readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
    readonly username: string;
    readonly password: string;
  } | null;
}

/** The TLS and SASL part of a configuration, for createKafka. */
export function brokerSecurity(kafka: {
  ssl: KafkaClientOptions['ssl'];
  sasl: KafkaClientOptions['sasl'];
}): Pick<KafkaClientOptions, 'ssl' | 'sasl'> {
  return { ssl: kafka.ssl ?? null, sasl: kafka.sasl ?? null };
}

/**
 * The requests this process sent to the brokers, by Kafka API (Produce, Fetch, OffsetCommit,
 * Heartbeat, ...), counted from kafkajs's instrumentation events. What a command costs the
 * broker is mostly how many requests it takes, so the gateway and the consumer export these in
 * /metrics (balance_kafka_requests_total) and `npm run bench:cost` divides them by commands.
 * Bounded: Kafka has a few dozen APIs.
 */
export const kafkaRequestsSent = new Map<string, number>();

function countRequests<T extends Producer | Consumer | Admin>(client: T): T {
  // The three clients' `on` differ only in their event names' types; REQUEST exists on each.
  (client as Producer).on((client as Producer).events.REQUEST, (event) => {
    const api = event.payload.apiName;
    kafkaRequestsSent.set(api, (kafkaRequestsSent.get(api) ?? 0) + 1);
  });
  return client;
}

export function createKafka(options: KafkaClientOptions): Kafka {
  const kafka = new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    connectionTimeout: options.connectionTimeoutMs ?? 3_000,
    requestTimeout: options.requestTimeoutMs ?? 30_000,
    retry: { retries: options.retriesMax ?? 5, initialRetryTime: 100, maxRetryTime: 5_000 },
    logLevel: KafkaLogLevel.WARN,
    logCreator: pinoLogCreator(options.log.child({ component: 'kafkajs' })),
    ...(options.ssl ? { ssl: tlsOptions(options.ssl) } : {}),
    ...(options.sasl
      ? {
          sasl: {
            mechanism: options.sasl.mechanism,
            username: options.sasl.username,
            password: options.sasl.password,
          } as kafkajs.SASLOptions,
        }
      : {}),
  });
  // Every client made from it counts its requests (see kafkaRequestsSent).
  const { producer, consumer, admin } = kafka;
  kafka.producer = (config) => countRequests(producer.call(kafka, config));
  kafka.consumer = (config) => countRequests(consumer.call(kafka, config));
  kafka.admin = (config) => countRequests(admin.call(kafka, config));
  return kafka;
}

function tlsOptions(ssl: NonNullable<KafkaClientOptions['ssl']>): kafkajs.KafkaConfig['ssl'] {
  const read = (file: string | null) => (file ? readFileSync(file, 'utf8') : undefined);
  return {
    rejectUnauthorized: ssl.rejectUnauthorized,
    ca: read(ssl.caFile),
    cert: read(ssl.certFile),
    key: read(ssl.keyFile),
  };
}

/** The same kafkajs message is logged at most once per window; a dead broker otherwise floods the log. */
export const KAFKA_LOG_REPEAT_WINDOW_MS = 10_000;
const LOG_KEYS_TRACKED_MAX = 1_000;
const IDEMPOTENT_RETRIES_WARNING = 'Limiting retries for the idempotent producer may invalidate EoS guarantees';

/**
 * Broker answers that mean "not yet" while a group or partition finds its coordinator or
 * leader, as on every first start of a broker. kafkajs logs them at error level and retries;
 * they are expected, so debug: the consumer says in one line what it waits for (worker.ts), and
 * a wait that lasts shows as a warning there and as a failing /readyz.
 */
const TRANSIENT_BROKER_ERRORS = [
  'The group coordinator is not available',
  'The coordinator is loading and hence can',
  'This is not the correct coordinator for this group',
  'There is no leader for this topic-partition',
];

/** kafkajs's own note that it restarts a consumer after a retriable crash, which the consumer reports itself. */
const CONSUMER_RESTART = /^Restarting the consumer in \d+ms$/;

function isTransientBrokerError(message: string, details: Record<string, unknown>): boolean {
  const text = `${message} ${typeof details.error === 'string' ? details.error : ''}`;
  return TRANSIENT_BROKER_ERRORS.some((known) => text.includes(known));
}

export function pinoLogCreator(log: Logger): kafkajs.logCreator {
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
      const expected = isTransientBrokerError(message, rest) || CONSUMER_RESTART.test(message);
      if (level === KafkaLogLevel.ERROR && !expected) log.error(details, message);
      else if (level === KafkaLogLevel.ERROR) log.debug(details, message);
      else if (level === KafkaLogLevel.WARN) log.warn(details, message);
      else if (level === KafkaLogLevel.INFO) log.info(details, message);
      else log.debug(details, message);
    };
}

export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
  /** -1 takes the broker's default. */
  readonly replicationFactor?: number;
  /** Topic-level settings (retention.ms, min.insync.replicas, ...), applied at creation and checked by `checkTopics`. */
  readonly configs?: Readonly<Record<string, string>>;
}

/**
 * Creates the topics that are missing, with explicit partition counts and settings (the broker
 * never auto-creates). A topic that exists with other settings is reported by `checkTopics`, not
 * changed here: adding partitions moves keys and is an operator's decision.
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
        topics: missing.map((spec) => ({
          topic: spec.topic,
          numPartitions: spec.partitions,
          replicationFactor: spec.replicationFactor ?? -1,
          configEntries: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    }
    return missing.map((spec) => spec.topic);
  } finally {
    await admin.disconnect();
  }
}

export interface TopicDrift {
  readonly topic: string;
  readonly setting: string;
  readonly expected: string;
  readonly actual: string;
}

/**
 * What differs between the topics and their specs: settings, partition counts, and a replication
 * factor below the wanted one. With `fix`, the settings are altered to the specs (kafkajs sends
 * the full set, so other dynamic settings of those topics are reset); partitions and replication
 * are only reported.
 */
export async function checkTopics(kafka: Kafka, specs: readonly TopicSpec[], fix: boolean): Promise<TopicDrift[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const drift: TopicDrift[] = [];
    const metadata = await admin.fetchTopicMetadata({ topics: specs.map((s) => s.topic) });
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: specs.map((s) => ({ type: kafkajs.ConfigResourceTypes.TOPIC, name: s.topic })),
    });
    for (const spec of specs) {
      const partitions = metadata.topics.find((t) => t.name === spec.topic)?.partitions ?? [];
      if (partitions.length !== spec.partitions)
        drift.push({
          topic: spec.topic,
          setting: 'partitions',
          expected: String(spec.partitions),
          actual: String(partitions.length),
        });
      const replicas = Math.min(...partitions.map((p) => p.replicas.length));
      if ((spec.replicationFactor ?? -1) > 0 && replicas < spec.replicationFactor!)
        drift.push({
          topic: spec.topic,
          setting: 'replication factor',
          expected: String(spec.replicationFactor),
          actual: String(replicas),
        });
      const entries = described.resources.find((r) => r.resourceName === spec.topic)?.configEntries ?? [];
      for (const [name, value] of Object.entries(spec.configs ?? {})) {
        const actual = entries.find((e) => e.configName === name)?.configValue ?? '(unset)';
        if (actual !== value) drift.push({ topic: spec.topic, setting: name, expected: value, actual });
      }
    }
    const toAlter = specs.filter((spec) =>
      drift.some((d) => d.topic === spec.topic && d.setting in (spec.configs ?? {})),
    );
    if (fix && toAlter.length > 0) {
      await admin.alterConfigs({
        validateOnly: false,
        resources: toAlter.map((spec) => ({
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name: spec.topic,
          configEntries: Object.entries(spec.configs ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
    }
    return drift;
  } finally {
    await admin.disconnect();
  }
}

/** Readiness: the admin client can describe the cluster within `timeoutMs`. */
export async function describeCluster(
  kafka: Kafka,
  timeoutMs: number,
): Promise<{ brokers: number; controller: number | null; clusterId: string }> {
  const admin = kafka.admin({ retry: { retries: 0 } });
  try {
    return await withTimeout(
      (async () => {
        await admin.connect();
        const cluster = await admin.describeCluster();
        return { brokers: cluster.brokers.length, controller: cluster.controller, clusterId: cluster.clusterId };
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
