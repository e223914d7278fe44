/**
 * The broker, topic and consumer settings of the configuration (schema.ts holds the rest): each
 * environment variable once, with its type, bounds, default and meaning.
 */
import { z } from 'zod';
import { bool, DAY_MS, int, orNull, text } from './schema-types.ts';
import { derived, Invalid, setting } from './settings.ts';

const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'must be a Kafka topic name');

export const KAFKA_SETTINGS = {
  brokers: setting(
    'KAFKA_BROKERS',
    orNull(z.string().regex(/^[^\s,]+:\d+(,[^\s,]+:\d+)*$/, 'must be host:port[,host:port...]')).transform(
      (value) => value?.split(',') ?? null,
    ),
    '`host:port[,host:port]`. Unset: `npm start` starts a local broker from the Maven Central jars',
  ),
  clientId: setting(
    'KAFKA_CLIENT_ID',
    text.default('balance-service'),
    'the Kafka client id of every client the service makes (gateway, consumer, tools)',
  ),
  local: {
    dir: setting('KAFKA_LOCAL_DIR', text.default('.local/kafka'), "the local broker's data folder"),
    port: setting('KAFKA_LOCAL_PORT', int(1, 65535).default(19092), "the local broker's client port"),
    controllerPort: setting(
      'KAFKA_LOCAL_CONTROLLER_PORT',
      int(1, 65535).default(19093),
      "the local broker's controller port",
    ),
    heapMb: setting('KAFKA_LOCAL_HEAP_MB', int(128, 8192).default(512), "the local broker's heap"),
  },
  readyWaitMs: setting(
    'KAFKA_READY_WAIT_MS',
    int(1000, 600_000).default(60_000),
    'how long to wait for a broker at start-up',
  ),
  produceLingerMs: setting(
    'PRODUCE_LINGER_MS',
    int(0, 100).default(1),
    'how long the gateway holds the first command of a burst so that concurrent requests share one produce request; only while another request waits for its reply or right after a send, so a lone request leaves at once (1 measured best: docs/performance.md)',
  ),
  replyRouting: setting(
    'REPLY_ROUTING',
    z.enum(['own-partition', 'all-partitions']).default('own-partition'),
    '`own-partition`: each gateway asks for its replies under a key of its own (the `balance-reply-key` header), so they land on the one reply partition it reads; `all-partitions`: replies are keyed by command id and every gateway reads every reply partition',
  ),
  ssl: derived(
    {
      enabled: setting('KAFKA_SSL', bool.default(false), 'TLS to the broker, for every client'),
      caFile: setting('KAFKA_SSL_CA_FILE', orNull(text), 'the CA file to verify the broker with'),
      certFile: setting('KAFKA_SSL_CERT_FILE', orNull(text), 'a client certificate file, for mutual TLS'),
      keyFile: setting('KAFKA_SSL_KEY_FILE', orNull(text), "that certificate's key file"),
      rejectUnauthorized: setting(
        'KAFKA_SSL_REJECT_UNAUTHORIZED',
        bool.default(true),
        'refuse a broker certificate the CA does not vouch for',
      ),
    },
    ({ enabled, ...ssl }) => (enabled ? ssl : null),
  ),
  sasl: derived(
    {
      mechanism: setting(
        'KAFKA_SASL_MECHANISM',
        z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
        'SASL to the broker: `plain`, `scram-sha-256` or `scram-sha-512`',
      ),
      username: setting('KAFKA_SASL_USERNAME', text.optional(), 'the SASL user'),
      password: setting('KAFKA_SASL_PASSWORD', text.optional(), 'its password'),
    },
    ({ mechanism, username, password }) => {
      if (mechanism === undefined) return null;
      if (username === undefined || password === undefined)
        return new Invalid(['KAFKA_SASL_MECHANISM: needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD']);
      return { mechanism, username, password };
    },
  ),
};

export const TOPIC_SETTINGS = {
  commands: setting('TOPIC_COMMANDS', topicName.default('balance.commands'), 'the command topic'),
  replies: setting('TOPIC_REPLIES', topicName.default('balance.replies'), 'the reply topic'),
  deadLetters: setting('TOPIC_DEAD_LETTERS', topicName.default('balance.commands.dlq'), 'the dead-letter topic'),
  events: setting(
    'TOPIC_EVENTS',
    topicName.default('balance.events'),
    'one balance event per applied command (docs/events.md)',
  ),
  anchors: setting(
    'TOPIC_ANCHORS',
    topicName.default('balance.anchors'),
    'signed roots over every history chain (docs/history-chain.md); one partition, kept forever',
  ),
  replyPrefix: setting(
    'REPLY_TOPIC_PREFIX',
    topicName.default('balance.replies.'),
    "a command's `reply_to` must be `TOPIC_REPLIES` or start with this; replies to anything else go to `TOPIC_REPLIES`",
  ),
  retentionMs: {
    commands: setting(
      'TOPIC_COMMANDS_RETENTION_MS',
      z.coerce.number().int().min(-1).default(-1),
      'retention of the command topic (-1: forever); a rebuild from the log can only go back as far as it keeps',
    ),
    replies: setting(
      'TOPIC_REPLIES_RETENTION_MS',
      int(60_000, 365 * DAY_MS).default(DAY_MS),
      'retention of the reply topic',
    ),
    deadLetters: setting(
      'TOPIC_DEAD_LETTERS_RETENTION_MS',
      int(60_000, 3_650 * DAY_MS).default(30 * DAY_MS),
      'retention of the dead-letter topic',
    ),
    events: setting(
      'TOPIC_EVENTS_RETENTION_MS',
      int(60_000, 3_650 * DAY_MS).default(7 * DAY_MS),
      'retention of the events topic',
    ),
  },
  replicationFactor: setting(
    'TOPIC_REPLICATION_FACTOR',
    int(-1, 16).default(-1),
    "replicas of the topics this service creates (-1: the broker's default); 3 for a production cluster",
  ),
  minInsyncReplicas: setting(
    'TOPIC_MIN_INSYNC_REPLICAS',
    int(1, 16).default(1),
    'their min.insync.replicas: 2 with 3 replicas, so acks=all survives the loss of a broker without losing an acknowledged command',
  ),
  commandPartitions: setting(
    'COMMAND_PARTITIONS',
    int(1, 1000).default(6),
    'partitions of the command, dead-letter and events topics it creates',
  ),
  replyPartitions: setting('REPLY_PARTITIONS', int(1, 1000).default(6), 'partitions of the reply topic it creates'),
};

export const CONSUMER_SETTINGS = {
  group: setting('CONSUMER_GROUP', text.default('balance-consumer'), 'the consumer group'),
  sessionTimeoutMs: setting(
    'CONSUMER_SESSION_TIMEOUT_MS',
    int(6_000, 300_000).default(30_000),
    'how soon the group notices a dead consumer and moves its partitions',
  ),
  partitionsConcurrent: setting(
    'CONSUMER_PARTITIONS_CONCURRENT',
    int(1, 64).default(6),
    'partitions one consumer applies at once, each in its own transaction (keep it at or below `PG_POOL_CONNECTIONS_MAX`)',
  ),
  fetchBytesMin: setting(
    'CONSUMER_FETCH_BYTES_MIN',
    int(1, 1_048_576).default(1),
    'a fetch of commands returns once it holds this many bytes or has waited `CONSUMER_FETCH_WAIT_MS`; a larger minimum saves about a tenth of the CPU under full load, but an idle consumer then fetches every `CONSUMER_FETCH_WAIT_MS` (docs/performance.md)',
  ),
  fetchWaitMs: setting(
    'CONSUMER_FETCH_WAIT_MS',
    int(0, 10_000).default(250),
    'the longest a fetch of commands waits for that',
  ),
  commitIntervalMs: setting(
    'CONSUMER_COMMIT_INTERVAL_MS',
    int(10, 60_000).default(100),
    'how often the consumer commits the offsets of the chunks it applied and published, all partitions in one request; after a crash up to this much is delivered again and answered as duplicates',
  ),
  batchCommandsMax: setting(
    'BATCH_COMMANDS_MAX',
    int(1, 100_000).default(2_000),
    'commands applied in one PostgreSQL transaction',
  ),
  applyRetriesMax: setting(
    'APPLY_RETRIES_MAX',
    int(0, 100).default(5),
    'retries of a chunk after a transient failure (a deadlock, a lost connection), with exponential backoff',
  ),
  applyRetryBackoffMs: setting('APPLY_RETRY_BACKOFF_MS', int(1, 60_000).default(50), 'the first of those waits'),
  stateCache: {
    usersMax: setting(
      'CONSUMER_CACHED_USERS_MAX',
      int(0, 10_000_000).default(20_000),
      'users of each owned partition whose accounts the consumer keeps between chunks (about 1 kB each); a chunk of warm users is written in one round trip. 0 turns the cache off: every chunk reads and locks its users',
    ),
    ordersMax: setting(
      'CONSUMER_CACHED_ORDERS_MAX',
      int(0, 10_000_000).default(20_000),
      'orders of each owned partition whose latest reservation the consumer keeps',
    ),
    commandIdsMax: setting(
      'CONSUMER_CACHED_COMMAND_IDS_MAX',
      int(0, 10_000_000).default(50_000),
      'ids of commands each owned partition decided recently, kept so their repeats go the sure way at once',
    ),
  },
  partitionPauseMs: setting(
    'PARTITION_PAUSE_MS',
    int(100, 600_000).default(10_000),
    'how long a partition pauses once a dependency failed past the retries, before it is tried again',
  ),
  kafkaBatchBytesMax: setting(
    'KAFKA_BATCH_BYTES_MAX',
    int(131_072, 16_777_216).default(900_000),
    "the most bytes of replies, dead letters and settles in one send (below the broker's 1 MiB message limit)",
  ),
  holdExpirySweepMs: setting(
    'HOLD_EXPIRY_SWEEP_MS',
    int(100, 3_600_000).default(1_000),
    'how often each consumer looks for holds past their `expires_in_s` (docs/commands.md, "Holds that expire")',
  ),
  holdExpiryBatchMax: setting(
    'HOLD_EXPIRY_BATCH_MAX',
    int(1, 100_000).default(1_000),
    'the most holds it expires per look',
  ),
};
