/**
 * Every environment variable of the service, once: its name, its type, bounds and default, and
 * what it means, placed where its value goes in the configuration. `loadConfig` (src/config.ts)
 * parses this tree, the `Config` type is derived from it, and docs/configuration.md is rendered
 * from it (`npm run docs`; a test holds the file equal). Every limit carries its unit in its name.
 */
import { z } from 'zod';
import { GRANTABLE_COMMAND_TYPES } from '../commands/command-types.ts';
import { CONSUMER_SETTINGS, KAFKA_SETTINGS, TOPIC_SETTINGS } from './kafka-settings.ts';
import { bool, int, orNull, text } from './schema-types.ts';
import { derived, Invalid, setting } from './settings.ts';

/** A development-only secret, so `npm start` works out of the box; production refuses it. */
export const DEV_JWT_SECRET = 'dev-only-secret-change-me-0123456789abcdef';
/** The same for the key that signs internal commands (settles); production refuses it. */
export const DEV_INTERNAL_COMMAND_SECRET = 'dev-only-internal-command-secret-0123456789';
/** The same for the secret anchors are signed from (docs/history-chain.md); production refuses it. */
export const DEV_ANCHOR_SIGNING_KEY = 'dev-only-anchor-signing-key-0123456789abcdef';
/** The most older internal-command keys a process accepts; each is tried only by its key id. */
const INTERNAL_COMMAND_KEYS_MAX = 100;
const secret = z.string().min(32, 'must be at least 32 characters');
const list = (item: z.ZodString, max: number) =>
  z
    .string()
    .transform((value) =>
      value
        .split(',')
        .map((entry) => entry.trim())
        .filter((entry) => entry.length > 0),
    )
    .pipe(z.array(item).max(max));

/** A time zone name this process knows; PostgreSQL's list comes from the same IANA database. */
function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** Fastify's trustProxy: `true`/`false`, a hop count, or addresses and CIDRs. */
function trustProxyOf(value: string): boolean | number | string {
  if (value === 'true' || value === 'false') return value === 'true';
  return /^[0-9]{1,2}$/.test(value) ? Number(value) : value;
}

export const CONFIG_SETTINGS = {
  env: setting(
    'NODE_ENV',
    z.enum(['development', 'production', 'test']).default('development'),
    'the environment; `production` refuses the built-in development secrets',
  ),
  logLevel: setting(
    'LOG_LEVEL',
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    'logs are JSON lines (pino), or one readable line per entry when standard output is a terminal',
  ),
  allowDevSecrets: setting(
    'ALLOW_DEV_SECRETS',
    bool.default(false),
    'allow the built-in development secrets (`npm start` sets it for itself when a secret is missing, and logs it); refused in production',
  ),
  http: {
    host: setting('HOST', text.default('127.0.0.1'), 'the address the gateway listens on'),
    port: setting('PORT', int(0, 65535).default(8000), "the gateway's port"),
    consumerPort: setting(
      'CONSUMER_HTTP_PORT',
      int(0, 65535).default(8001),
      "a stand-alone consumer's `/healthz`, `/readyz` and `/metrics`, on `HOST` (0 picks a free port)",
    ),
    bodyBytesMax: setting(
      'BODY_BYTES_MAX',
      int(256, 1_048_576).default(16_384),
      'the largest request body (bulks: `BULK_BODY_BYTES_MAX`)',
    ),
    trustProxy: setting(
      'TRUST_PROXY',
      text.default('false').transform(trustProxyOf),
      "which proxies' `X-Forwarded-For` to believe for the client address: `true`, a hop count, or addresses/CIDRs",
    ),
    metrics: derived(
      {
        host: setting(
          'METRICS_HOST',
          text.optional(),
          "with `METRICS_PORT`, serve the gateway's `/metrics` on its own listener instead of beside the API",
        ),
        port: setting('METRICS_PORT', int(0, 65535).optional(), 'the port of that listener'),
      },
      ({ host, port }) => {
        if (host !== undefined && port !== undefined) return { host, port };
        if (host === undefined && port === undefined) return null;
        return new Invalid(['METRICS_HOST, METRICS_PORT: set both, or neither']);
      },
    ),
    requestLog: setting(
      'REQUEST_LOG',
      z.enum(['none', 'slow', 'all']).default('slow'),
      'one log line per answered request: `none`, only those that took `REQUEST_LOG_SLOW_MS` or more (at `warn`), or `all` (at `info`); 5xx answers are always logged with their error. A line per request costs as much CPU as a fast request',
    ),
    requestLogSlowMs: setting('REQUEST_LOG_SLOW_MS', int(1, 600_000).default(1_000), 'what `slow` means'),
  },
  auth: {
    userActions: setting(
      'USER_ACTIONS',
      z
        .string()
        .regex(/^[a-z]+(,[a-z]+)*$/, 'must be a comma-separated list')
        .transform((value) => value.split(','))
        .pipe(z.array(z.enum(GRANTABLE_COMMAND_TYPES)))
        .default(['transfer']),
      'what an end user may do on their own account besides reading it; see docs/security.md for what wider settings risk',
    ),
    allowMissingIdempotencyKey: setting(
      'ALLOW_MISSING_IDEMPOTENCY_KEY',
      bool.default(false),
      'accept money-moving requests without an `Idempotency-Key` (a fresh id is used, so a retry may apply twice)',
    ),
    allowTransfersToNewAccounts: setting(
      'ALLOW_TRANSFERS_TO_NEW_ACCOUNTS',
      bool.default(false),
      'let a transfer name a recipient that is neither registered nor has history (otherwise 409 `recipient_not_found`: the money would wait for them)',
    ),
    tokenStateCacheMs: setting(
      'TOKEN_STATE_CACHE_MS',
      int(0, 60_000).default(5_000),
      "how stale a token's state (revoked, disabled, role) may be: revocations take effect within this",
    ),
    rateLimitPerS: setting(
      'RATE_LIMIT_PER_S',
      int(0, 1_000_000).default(1_000),
      'money-moving and alert requests per principal (token bucket, on each gateway): after the burst, this many a second; past it 429 `rate_limited` with `Retry-After`. 0 turns it off',
    ),
    rateLimitBurst: setting('RATE_LIMIT_BURST', int(1, 1_000_000).default(2_000), 'the burst of that bucket'),
  },
  db: {
    url: setting(
      'DATABASE_URL',
      orNull(z.url({ protocol: /^postgres(ql)?$/ })),
      'PostgreSQL; the database is created if missing. Unset: the PostgreSQL server `npm start` runs itself',
    ),
    local: {
      dir: setting(
        'POSTGRES_LOCAL_DIR',
        text.default('.local/postgres'),
        "the local server's data folder (`DATABASE_URL` unset)",
      ),
      port: setting('POSTGRES_LOCAL_PORT', int(1, 65535).default(15432), "the local server's port, on 127.0.0.1 only"),
    },
    poolConnectionsMax: setting('PG_POOL_CONNECTIONS_MAX', int(1, 200).default(10), 'connections per process'),
    statementTimeoutMs: setting('PG_STATEMENT_TIMEOUT_MS', int(100, 600_000).default(30_000), 'the longest statement'),
    connectWaitMs: setting(
      'PG_CONNECT_WAIT_MS',
      int(50, 120_000).default(10_000),
      'the longest wait for a free pooled connection; past it the request answers 503',
    ),
  },
  kafka: KAFKA_SETTINGS,
  topics: TOPIC_SETTINGS,
  consumer: CONSUMER_SETTINGS,
  reports: {
    timeZone: setting(
      'REPORT_TIME_ZONE',
      z
        .string()
        .max(64)
        .refine(isTimeZone, 'must be an IANA time zone name, like Europe/Moscow')
        .default('Europe/Moscow'),
      'the IANA time zone whose midnight begins a month, for the revenue report and statements',
    ),
  },
  fx: {
    ratesUrl: setting(
      'FX_RATES_URL',
      orNull(z.url({ protocol: /^https?$/ }).max(2_000)),
      "the Central Bank of Russia's daily rates file to fetch exchange rates from (`https://www.cbr.ru/scripts/XML_daily.asp`); unset, rates come only from `npm run rates -- set`",
    ),
    fetchIntervalS: setting(
      'FX_FETCH_INTERVAL_S',
      int(60, 86_400).default(3_600),
      'how often the gateway fetches the rates',
    ),
    fetchTimeoutMs: setting('FX_FETCH_TIMEOUT_MS', int(100, 60_000).default(5_000), 'how long one fetch may take'),
    responseBytesMax: setting(
      'FX_RESPONSE_BYTES_MAX',
      int(1_024, 10_000_000).default(1_000_000),
      'the largest answer it reads',
    ),
    rateAgeMaxS: setting(
      'FX_RATE_AGE_MAX_S',
      int(60, 31_536_000).default(345_600),
      "the oldest rate a balance read converts with (4 days: a Monday still uses Saturday's), counted from when an operator set it or from the start of the Central Bank's date (Moscow); older answers 409 `rate_unavailable`",
    ),
  },
  limits: {
    replyWaitMs: setting(
      'REPLY_WAIT_MS',
      int(100, 120_000).default(10_000),
      'how long a request waits for its reply before it answers 202',
    ),
    pageItemsMax: setting('PAGE_ITEMS_MAX', int(1, 10_000).default(100), 'the most rows of one history page'),
    statementRowsMax: setting(
      'STATEMENT_ROWS_MAX',
      int(1, 100_000).default(1_000),
      'the most history rows in one page of a monthly statement (`limit` may ask for fewer)',
    ),
    amountMinorMax: setting(
      'AMOUNT_MINOR_MAX',
      int(1, Number.MAX_SAFE_INTEGER).default(100_000_000_000),
      'the largest amount of one command, in kopecks: a 400 at the gateway, `amount_too_large` in the ledger. This and the next two are recorded in the log when changed, so a replay decides with the limits the live run had (docs/operations.md, "Recorded limits")',
    ),
    balanceMinorMax: setting(
      'BALANCE_MINOR_MAX',
      int(1, Number.MAX_SAFE_INTEGER).default(1_000_000_000_000_000),
      'the most a user may hold (available + reserved) after a deposit, in kopecks (at most 2^53-1, so a balance plus an amount fits a BIGINT); past it `balance_limit_exceeded`',
    ),
    alertsPerUserMax: setting(
      'ALERTS_PER_USER_MAX',
      int(0, 1_000).default(20),
      'the most threshold alerts one user may have (each is checked on every change of their balance); one more is `alert_limit_exceeded`',
    ),
    transferRecipientsMax: setting(
      'TRANSFER_RECIPIENTS_MAX',
      int(1, 100).default(20),
      'the most recipients of one split payment over HTTP (the consumer takes up to 100 from Kafka producers)',
    ),
    bulkCommandsMax: setting(
      'BULK_COMMANDS_MAX',
      int(1, 10_000).default(1_000),
      'the most commands in one `POST /api/commands/bulk`',
    ),
    bulkBodyBytesMax: setting(
      'BULK_BODY_BYTES_MAX',
      int(1_024, 16_777_216).default(1_048_576),
      'the largest body a bulk may send',
    ),
    bulkBatchesRetentionS: setting(
      'BULK_BATCHES_RETENTION_S',
      int(60, 31_536_000).default(86_400),
      "how long a bulk's status URL lives; gateways delete older bulk rows by themselves (each item's status stays at `/api/commands/<key>`)",
    ),
    bulkItemsStoredPerHourMax: setting(
      'BULK_ITEMS_STORED_PER_HOUR_MAX',
      int(1, 100_000_000).default(100_000),
      'the most valid bulk items one caller may store an hour (429 `bulk_storage_exceeded` past it); invalid items are answered, never stored',
    ),
  },
  internalCommands: derived(
    {
      secret: setting(
        'INTERNAL_COMMAND_SECRET',
        secret.default(DEV_INTERNAL_COMMAND_SECRET),
        "the HMAC key that proves a settle, an expire, a settings record or a gateway's attestation was made by the service; production refuses to start without one of its own",
        { shownDefault: 'a development secret' },
      ),
      previous: setting(
        'INTERNAL_COMMAND_SECRET_PREVIOUS',
        secret.optional(),
        'the other key during a rotation; each process signs with the first of the two that every partition accepts (docs/operations.md, "Rotating the internal key")',
      ),
      older: setting(
        'INTERNAL_COMMAND_KEYS',
        list(z.string().min(32, 'each key must be at least 32 characters'), INTERNAL_COMMAND_KEYS_MAX).default([]),
        'every older internal key a replayed log may have been signed with, comma-separated: used by `npm run replay` only, only where the log records that the live run accepted it, never to sign',
      ),
    },
    ({ secret: current, previous, older }) => ({
      secret: current,
      acceptedSecrets: previous !== undefined && previous !== current ? [previous] : [],
      replaySecrets: [...new Set(older)].filter((key) => key !== current && key !== previous),
    }),
  ),
  anchors: {
    signingKey: setting(
      'ANCHOR_SIGNING_KEY',
      secret.default(DEV_ANCHOR_SIGNING_KEY),
      'the secret anchors are signed from (the Ed25519 seed is its SHA-256); third parties check anchors with its public key (`npm run anchor -- --public-key`); production refuses the built-in one',
      { shownDefault: 'a development key' },
    ),
    publicKeys: setting(
      'ANCHOR_PUBLIC_KEYS',
      list(
        z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'each must be a 32-byte Ed25519 public key in base64'),
        100,
      ).default([]),
      "the anchor public keys `npm run verify` trusts besides `ANCHOR_SIGNING_KEY`'s, comma-separated (keys retired, or the operator's when the auditor has no secret); an anchor signed with any other key fails verify",
    ),
    intervalS: setting(
      'ANCHOR_INTERVAL_S',
      int(0, 7 * 86_400).default(3_600),
      'how often a consumer anchors every history chain (0: only on demand, `npm run anchor`)',
    ),
  },
  reconciliation: {
    bytesMax: setting(
      'RECONCILIATION_BYTES_MAX',
      int(1_024, 104_857_600).default(10_485_760),
      'the largest statement file `POST /api/reconciliations/` and `npm run reconcile-statement` read (413 `body_too_large` past it)',
    ),
    amountTolerance: setting(
      'RECONCILIATION_AMOUNT_TOLERANCE_MINOR',
      int(0, 1_000_000).default(0),
      'the default largest difference in amount still matched, in kopecks (`amount_tolerance` per run)',
    ),
    timeDriftS: setting(
      'RECONCILIATION_TIME_DRIFT_S',
      int(0, 30 * 86_400).default(86_400),
      'the default largest difference in time still matched (`time_drift_s` per run)',
    ),
  },
  jwt: {
    secret: setting(
      'JWT_SECRET',
      secret.default(DEV_JWT_SECRET),
      'the key access and refresh tokens are signed with; production refuses to start without one of its own',
      {
        shownDefault: 'a development secret',
      },
    ),
    issuer: setting('JWT_ISSUER', text.default('balance-service'), "the tokens' issuer"),
    audience: setting('JWT_AUDIENCE', text.default('balance-api'), "the tokens' audience"),
    accessTtlS: setting('JWT_ACCESS_TTL_S', int(10, 86_400).default(300), 'how long an access token lives'),
    refreshTtlS: setting('JWT_REFRESH_TTL_S', int(60, 30 * 86_400).default(86_400), 'how long a refresh token lives'),
  },
};
