/**
 * Readiness probes shared by the gateway and the consumer: PostgreSQL answers a query and the
 * Kafka admin client can describe the cluster, each within a bounded time.
 */
import type pg from 'pg';
import { describeCluster, withTimeout, type Kafka } from './kafka/client.ts';

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: { readonly postgres: CheckResult; readonly kafka: CheckResult };
}
export interface CheckResult {
  readonly ok: boolean;
  readonly latencyMs: number;
  readonly error?: string;
}

export type ReadinessProbe = () => Promise<ReadinessReport>;

export function createReadinessProbe(deps: { pool: pg.Pool; kafka: Kafka; probeWaitMs: number }): ReadinessProbe {
  return async () => {
    const [postgres, kafka] = await Promise.all([
      timed(() => withTimeout(deps.pool.query('SELECT 1'), deps.probeWaitMs, 'PostgreSQL did not answer')),
      timed(() => describeCluster(deps.kafka, deps.probeWaitMs)),
    ]);
    return { ready: postgres.ok && kafka.ok, checks: { postgres, kafka } };
  };
}

async function timed(check: () => Promise<unknown>): Promise<CheckResult> {
  const started = performance.now();
  try {
    await check();
    return { ok: true, latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    return { ok: false, latencyMs: Math.round(performance.now() - started), error: (error as Error).message };
  }
}
