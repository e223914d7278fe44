/**
 * Wires the gateway's dependencies into the app factory: the readiness probe and, as they
 * arrive, the command publisher and the reply waiter.
 */
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { WorkerStats } from '../consumer/worker.ts';
import { createReadinessProbe } from '../health.ts';
import type { Kafka } from '../kafka/client.ts';
import type { Logger } from '../log.ts';
import { buildApp } from './app.ts';

export interface GatewayDeps {
  readonly config: Config;
  readonly kafka: Kafka;
  readonly pool: pg.Pool;
  readonly log: Logger;
  /** Present when the consumer runs in the same process, for /metrics. */
  readonly consumerStats?: WorkerStats;
}

/** Probes give up after this long, so /readyz answers promptly even when a dependency hangs. */
export const READINESS_PROBE_WAIT_MS = 2_000;

export async function buildGateway(deps: GatewayDeps): Promise<FastifyInstance> {
  const readiness = createReadinessProbe({ pool: deps.pool, kafka: deps.kafka, probeWaitMs: READINESS_PROBE_WAIT_MS });
  return buildApp({ config: deps.config, log: deps.log, readiness });
}
