/**
 * Wires the gateway: the command client (publisher and reply listener), tokens, throttling,
 * metrics and the readiness probe, into the app factory.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type pg from 'pg';
import type { Config } from '../config.ts';
import { CommandClient } from '../client/command-client.ts';
import { createReadinessProbe, type LocalCheck } from '../health.ts';
import { type Kafka, kafkaRequestsSent } from '../kafka/client.ts';
import type { Logger } from '../log.ts';
import { InFlightHandlers } from './in-flight.ts';
import { buildApp } from './app.ts';
import { PrincipalRateLimit } from './rate-limit.ts';
import { LoginThrottle } from './auth/throttle.ts';
import { TokenService } from './auth/tokens.ts';
import { TokenStates } from './auth/token-states.ts';
import { Permissions } from '../commands/permissions.ts';
import { PrincipalAttestation } from '../commands/principal-proof.ts';
import { KeyRing } from '../commands/key-ring.ts';
import { SigningKeyWatch } from '../signing-key-watch.ts';
import { Metrics, registerKafkaRequestMetrics, registerSigningKeyMetric } from '../metrics.ts';
import { PendingCommands } from './pending.ts';
import { createHttpSchemas } from './schemas.ts';
import { RatesFetcher } from '../fx/fetcher.ts';
import { PeriodicTask } from '../periodic.ts';
import { pruneBulkBatches } from './routes/bulk.ts';

export interface GatewayDeps {
  readonly config: Config;
  readonly kafka: Kafka;
  readonly pool: pg.Pool;
  readonly log: Logger;
  /**
   * Figures of a consumer running in the same process (npm start), for /metrics and /readyz:
   * the caller, which knows both, hands them over, so the gateway knows no consumer.
   */
  readonly colocated?: { readonly registerMetrics: (metrics: Metrics) => void; readonly readiness: LocalCheck };
}

/** Probes give up after this long, so /readyz answers promptly even when a dependency hangs. */
export const READINESS_PROBE_WAIT_MS = 2_000;
export const PENDING_COMMANDS_MAX = 100_000;
export const PENDING_COMMAND_AGE_MS_MAX = 15 * 60_000;
export const WAITING_REQUESTS_MAX = 10_000;
/** How often a gateway deletes bulks past BULK_BATCHES_RETENTION_S. */
const BULK_PRUNE_INTERVAL_MS = 60_000;

/** How long past REPLY_WAIT_MS a stopping gateway waits for handlers to finish. */
export const SHUTDOWN_GRACE_MS = 2_000;

export interface Gateway {
  readonly app: FastifyInstance;
  readonly client: CommandClient;
  /** Which key it signs with; started by start() (tests that inject start it themselves). */
  readonly signingKey: SigningKeyWatch;
  start(listen: { host: string; port: number }): Promise<string>;
  stop(): Promise<void>;
}

export function buildGateway(deps: GatewayDeps): Gateway {
  const { config } = deps;
  const client = new CommandClient({
    kafka: deps.kafka,
    commandTopic: config.topics.commands,
    replyTopic: config.topics.replies,
    waitingRequestsMax: WAITING_REQUESTS_MAX,
    lingerMs: config.kafka.produceLingerMs,
    replyRouting: config.kafka.replyRouting,
    log: deps.log,
  });
  // The key its attestations are signed with: one every partition accepts (signing-key-watch.ts).
  const keys = new KeyRing(config.internalCommands);
  const signingKey = new SigningKeyWatch({ pool: deps.pool, topic: config.topics.commands, keys, log: deps.log });
  const metrics = gatewayMetrics(client, signingKey);
  deps.colocated?.registerMetrics(metrics);
  const inFlight = new InFlightHandlers();
  const app = buildApp({
    config,
    log: deps.log,
    pool: deps.pool,
    client,
    readiness: createReadinessProbe({
      pool: deps.pool,
      kafka: deps.kafka,
      probeWaitMs: READINESS_PROBE_WAIT_MS,
      log: deps.log,
      local: {
        replies: () =>
          client.listening
            ? { ok: true, latencyMs: 0 }
            : { ok: false, latencyMs: 0, error: 'the reply listener has not joined its group yet' },
        ...(deps.colocated ? { consumer: deps.colocated.readiness } : {}),
        signing_key: () =>
          signingKey.accepted
            ? { ok: true, latencyMs: 0 }
            : { ok: false, latencyMs: 0, error: signingKey.problem ?? 'the signing key is not accepted' },
      },
    }),
    tokens: new TokenService(config.jwt),
    tokenStates: new TokenStates(deps.pool, config.auth.tokenStateCacheMs),
    permissions: new Permissions(config.auth.userActions),
    attestation: new PrincipalAttestation(keys),
    signingKey,
    throttle: new LoginThrottle(),
    rateLimit: new PrincipalRateLimit(config.auth.rateLimitPerS, config.auth.rateLimitBurst),
    pending: new PendingCommands(PENDING_COMMANDS_MAX, PENDING_COMMAND_AGE_MS_MAX),
    metrics,
    schemas: createHttpSchemas(config.limits),
    inFlight,
  });
  const metricsApp = config.http.metrics ? metricsServer(metrics, deps.log) : null;
  // Every gateway may fetch: the rates are upserted, so two gateways fetching is one more request, not a conflict.
  const rates = config.fx.ratesUrl
    ? new RatesFetcher({
        url: config.fx.ratesUrl,
        intervalMs: config.fx.fetchIntervalS * 1_000,
        timeoutMs: config.fx.fetchTimeoutMs,
        responseBytesMax: config.fx.responseBytesMax,
        pool: deps.pool,
        log: deps.log.child({ task: 'exchange-rates' }),
      })
    : null;
  // Every gateway prunes: a second one deleting the same old rows finds them gone.
  const bulkRetention = new PeriodicTask(
    'bulk-batches-retention',
    BULK_PRUNE_INTERVAL_MS,
    () => pruneBulkBatches(deps.pool, config.limits.bulkBatchesRetentionS),
    deps.log,
  );
  return {
    app,
    client,
    signingKey,
    async start(listen) {
      await signingKey.start();
      await client.start();
      deps.log.info(client.replyRoute, 'reply route: replies to this gateway are keyed to these reply partitions');
      const address = await app.listen(listen);
      rates?.start();
      bulkRetention.start();
      if (metricsApp && config.http.metrics)
        deps.log.info(
          { metrics: await metricsApp.listen(config.http.metrics) },
          '/metrics is served on its own listener',
        );
      return address;
    },
    async stop() {
      await app.close();
      // Handlers whose clients hung up may still wait for replies: let them finish (bounded)
      // while the client and the pool still work.
      if (!(await inFlight.drained(config.limits.replyWaitMs + SHUTDOWN_GRACE_MS))) {
        deps.log.warn({ handlers: inFlight.count }, 'stopping with handlers still running');
      }
      await rates?.stop();
      await bulkRetention.stop();
      signingKey.stop();
      await client.stop();
      await metricsApp?.close();
    },
  };
}

/** /metrics on a listener of its own (METRICS_HOST, METRICS_PORT), away from the API's port. */
function metricsServer(metrics: Metrics, log: Logger): FastifyInstance {
  const server = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  server.get('/metrics', async (_request, reply) =>
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(metrics.render()),
  );
  return server;
}

/** The gateway's figures (a consumer in the same process adds its own: GatewayDeps.colocated). */
export function gatewayMetrics(
  client: Pick<CommandClient, 'published' | 'repliesMatched' | 'timeouts' | 'waiting' | 'repliesMalformed'>,
  signingKey: { readonly accepted: boolean } = { accepted: true },
): Metrics {
  const metrics = new Metrics();
  registerSigningKeyMetric(metrics, signingKey);
  metrics.register(
    'balance_commands_published_total',
    'Commands published to Kafka by this gateway.',
    'counter',
    () => [{ value: client.published }],
  );
  metrics.register('balance_replies_matched_total', 'Replies matched to a waiting request.', 'counter', () => [
    { value: client.repliesMatched },
  ]);
  metrics.register('balance_reply_timeouts_total', 'Requests that stopped waiting for a reply.', 'counter', () => [
    { value: client.timeouts },
  ]);
  metrics.register('balance_requests_waiting', 'Requests waiting for a reply now.', 'gauge', () => [
    { value: client.waiting },
  ]);
  metrics.register(
    'balance_replies_malformed_total',
    'Messages on the reply topic that are not valid replies: ignored.',
    'counter',
    () => [{ value: client.repliesMalformed }],
  );
  registerKafkaRequestMetrics(metrics, kafkaRequestsSent);
  return metrics;
}
