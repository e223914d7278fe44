/**
 * A stand-alone consumer's own operations port: /healthz (the process is up), /readyz
 * (PostgreSQL and Kafka answer, the group is joined, no partition is paused) and /metrics. In
 * `npm start` the gateway serves the same figures instead, so this is not started there.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type pg from 'pg';
import { createReadinessProbe } from '../health.ts';
import { type Kafka, kafkaRequestsSent } from '../kafka/client.ts';
import type { Logger } from '../log.ts';
import { Metrics, registerKafkaRequestMetrics, registerSigningKeyMetric } from '../metrics.ts';
import { consumerReadiness, registerConsumerMetrics } from './metrics.ts';
import type { WorkerStats } from './worker-context.ts';

/** Probes give up after this long, so /readyz answers promptly even when a dependency hangs. */
const READINESS_PROBE_WAIT_MS = 2_000;

export function buildConsumerApp(deps: {
  pool: pg.Pool;
  kafka: Kafka;
  stats: WorkerStats;
  /** Whether every partition accepts the key the consumer signs settles and expires with. */
  signingKey: { readonly accepted: boolean; readonly problem: string | null };
  log: Logger;
}): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  });
  const metrics = new Metrics();
  registerConsumerMetrics(metrics, deps.stats);
  registerKafkaRequestMetrics(metrics, kafkaRequestsSent);
  registerSigningKeyMetric(metrics, deps.signingKey);
  const readiness = createReadinessProbe({
    pool: deps.pool,
    kafka: deps.kafka,
    probeWaitMs: READINESS_PROBE_WAIT_MS,
    log: deps.log,
    local: {
      consumer: consumerReadiness(deps.stats),
      signing_key: () =>
        deps.signingKey.accepted
          ? { ok: true, latencyMs: 0 }
          : { ok: false, latencyMs: 0, error: deps.signingKey.problem ?? 'the signing key is not accepted' },
    },
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const report = await readiness();
    return reply.code(report.ready ? 200 : 503).send(report);
  });
  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(metrics.render()),
  );
  return app;
}
