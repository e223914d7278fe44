/**
 * The service's configuration: one zod schema over the environment, parsed once at start-up
 * into a frozen object. Every limit carries its unit at the end of its name.
 */
import { z } from 'zod';

export const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/balance';

/** A development-only secret, so `npm start` works out of the box; production refuses it. */
const DEV_JWT_SECRET = 'dev-only-secret-change-me-0123456789abcdef';
/** The same for the key that signs internal commands (settles); production refuses it. */
const DEV_INTERNAL_COMMAND_SECRET = 'dev-only-internal-command-secret-0123456789';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
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
  PG_POOL_CONNECTIONS_MAX: int(1, 200).default(10),
  PG_STATEMENT_TIMEOUT_MS: int(100, 600_000).default(30_000),
  PG_CONNECT_WAIT_MS: int(50, 120_000).default(10_000),

  KAFKA_BROKERS: z.string().regex(/^[^\s,]+:\d+(,[^\s,]+:\d+)*$/, 'must be host:port[,host:port...]').optional(),
  KAFKA_CLIENT_ID: z.string().min(1).default('balance-service'),
  KAFKA_LOCAL_DIR: z.string().min(1).default('.local/kafka'),
  KAFKA_LOCAL_PORT: int(1, 65535).default(19092),
  KAFKA_LOCAL_CONTROLLER_PORT: int(1, 65535).default(19093),
  KAFKA_LOCAL_HEAP_MB: int(128, 8192).default(512),
  KAFKA_READY_WAIT_MS: int(1000, 600_000).default(60_000),

  TOPIC_COMMANDS: topicName.default('balance.commands'),
  TOPIC_REPLIES: topicName.default('balance.replies'),
  TOPIC_DEAD_LETTERS: topicName.default('balance.commands.dlq'),
  // Commands may ask for replies on the reply topic or on topics under this prefix, nowhere else.
  REPLY_TOPIC_PREFIX: topicName.default('balance.replies.'),
  COMMAND_PARTITIONS: int(1, 1000).default(6),
  REPLY_PARTITIONS: int(1, 1000).default(6),
  CONSUMER_GROUP: z.string().min(1).default('balance-consumer'),
  // One per default partition: a transfer no longer locks the recipient's spendable rows, so
  // partitions seldom wait on each other, and each one's round trips overlap the others' work.
  CONSUMER_PARTITIONS_CONCURRENT: int(1, 64).default(6),
  CONSUMER_SESSION_TIMEOUT_MS: int(6_000, 300_000).default(30_000),
  // How long a partition stays paused after a dependency failed APPLY_RETRIES_MAX times in a row.
  PARTITION_PAUSE_MS: int(100, 600_000).default(10_000),
  // Below the broker's message.max.bytes (1 MiB by default), so one send never exceeds it.
  KAFKA_BATCH_BYTES_MAX: int(131_072, 16_777_216).default(900_000),

  BODY_BYTES_MAX: int(256, 1_048_576).default(16_384),
  REPLY_WAIT_MS: int(100, 120_000).default(10_000),
  BATCH_COMMANDS_MAX: int(1, 100_000).default(2_000),
  APPLY_RETRIES_MAX: int(0, 100).default(5),
  APPLY_RETRY_BACKOFF_MS: int(1, 60_000).default(50),
  PAGE_ITEMS_MAX: int(1, 10_000).default(100),
  AMOUNT_MINOR_MAX: int(1, Number.MAX_SAFE_INTEGER).default(100_000_000_000),
  // At most 2^53-1, so a balance plus an amount always fits PostgreSQL's BIGINT.
  BALANCE_MINOR_MAX: int(1, Number.MAX_SAFE_INTEGER).default(1_000_000_000_000_000),

  INTERNAL_COMMAND_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_INTERNAL_COMMAND_SECRET),
  // The key being retired during a rotation: still accepted, never used to sign.
  INTERNAL_COMMAND_SECRET_PREVIOUS: z.string().min(32, 'must be at least 32 characters').optional(),

  JWT_SECRET: z.string().min(32, 'must be at least 32 characters').default(DEV_JWT_SECRET),
  JWT_ISSUER: z.string().min(1).default('balance-service'),
  JWT_AUDIENCE: z.string().min(1).default('balance-api'),
  JWT_ACCESS_TTL_S: int(10, 86_400).default(300),
  JWT_REFRESH_TTL_S: int(60, 30 * 86_400).default(86_400),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  readonly env: Env['NODE_ENV'];
  readonly logLevel: Env['LOG_LEVEL'];
  readonly http: { readonly host: string; readonly port: number; readonly consumerPort: number; readonly bodyBytesMax: number };
  readonly db: {
    /** Null means "use the default local server and create the database if it is missing". */
    readonly url: string | null;
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
  };
  readonly topics: {
    readonly commands: string;
    readonly replies: string;
    readonly deadLetters: string;
    /** `reply_to` may name the reply topic or a topic starting with this. */
    readonly replyPrefix: string;
    readonly commandPartitions: number;
    readonly replyPartitions: number;
  };
  readonly consumer: {
    readonly group: string;
    /** How long the group waits for a silent consumer (one that died) before moving its partitions. */
    readonly sessionTimeoutMs: number;
    /** Partitions one process applies at the same time, each in its own transaction. */
    readonly partitionsConcurrent: number;
    readonly batchCommandsMax: number;
    readonly applyRetriesMax: number;
    readonly applyRetryBackoffMs: number;
    /** How long a partition stays paused once a dependency failed past the retries. */
    readonly partitionPauseMs: number;
    /** The most bytes of messages in one send to Kafka (replies, dead letters, settles). */
    readonly kafkaBatchBytesMax: number;
  };
  readonly limits: {
    readonly replyWaitMs: number;
    readonly pageItemsMax: number;
    readonly amountMinorMax: number;
    /** The most any user balance may hold after a deposit, in minor units. */
    readonly balanceMinorMax: number;
  };
  /** Keys of the HMAC that proves an internal command (a settle) was made by the consumer. */
  readonly internalCommands: {
    readonly secret: string;
    readonly previousSecret: string | null;
  };
  readonly jwt: {
    readonly secret: string;
    readonly issuer: string;
    readonly audience: string;
    readonly accessTtlS: number;
    readonly refreshTtlS: number;
  };
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

/** Parses the environment once. Throws ConfigError naming every bad variable. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const parsed = envSchema.safeParse(withoutEmptyValues(source));
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const env = parsed.data;
  if (env.NODE_ENV === 'production' && env.JWT_SECRET === DEV_JWT_SECRET) {
    throw new ConfigError(['JWT_SECRET: must be set in production (the built-in development secret is public)']);
  }
  if (env.NODE_ENV === 'production' && env.INTERNAL_COMMAND_SECRET === DEV_INTERNAL_COMMAND_SECRET) {
    throw new ConfigError(['INTERNAL_COMMAND_SECRET: must be set in production (without it anyone who can publish to the command topic can forge settles)']);
  }
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
    http: { host: env.HOST, port: env.PORT, consumerPort: env.CONSUMER_HTTP_PORT, bodyBytesMax: env.BODY_BYTES_MAX },
    db: {
      url: env.DATABASE_URL ?? null,
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
    },
    topics: {
      commands: env.TOPIC_COMMANDS,
      replies: env.TOPIC_REPLIES,
      deadLetters: env.TOPIC_DEAD_LETTERS,
      replyPrefix: env.REPLY_TOPIC_PREFIX,
      commandPartitions: env.COMMAND_PARTITIONS,
      replyPartitions: env.REPLY_PARTITIONS,
    },
    consumer: {
      group: env.CONSUMER_GROUP,
      sessionTimeoutMs: env.CONSUMER_SESSION_TIMEOUT_MS,
      partitionsConcurrent: env.CONSUMER_PARTITIONS_CONCURRENT,
      batchCommandsMax: env.BATCH_COMMANDS_MAX,
      applyRetriesMax: env.APPLY_RETRIES_MAX,
      applyRetryBackoffMs: env.APPLY_RETRY_BACKOFF_MS,
      partitionPauseMs: env.PARTITION_PAUSE_MS,
      kafkaBatchBytesMax: env.KAFKA_BATCH_BYTES_MAX,
    },
    limits: {
      replyWaitMs: env.REPLY_WAIT_MS,
      pageItemsMax: env.PAGE_ITEMS_MAX,
      amountMinorMax: env.AMOUNT_MINOR_MAX,
      balanceMinorMax: env.BALANCE_MINOR_MAX,
    },
    internalCommands: {
      secret: env.INTERNAL_COMMAND_SECRET,
      previousSecret: env.INTERNAL_COMMAND_SECRET_PREVIOUS ?? null,
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

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? (T[K] extends readonly unknown[] ? T[K] : DeepPartial<T[K]>) : T[K] };

function merge<T>(target: T, patch: unknown): T {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch as T;
  const out = target as Record<string, unknown>;
  for (const [key, value] of Object.entries(patch)) {
    out[key] = value && typeof value === 'object' && !Array.isArray(value) ? merge(out[key] ?? {}, value) : value;
  }
  return out as T;
}
