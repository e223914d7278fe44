/**
 * Readiness probes shared by the gateway and the consumer: PostgreSQL answers a query and the
 * Kafka admin client can describe the cluster, each within a bounded time, plus any checks of
 * the process's own state (the consumer: joined its group, no partition paused).
 */
import type pg from 'pg';
import { describeCluster, withTimeout, type Kafka } from './kafka/client.ts';

export interface ReadinessReport {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, CheckResult>>;
}
export interface CheckResult {
  readonly ok: boolean;
  readonly latencyMs: number;
  readonly error?: string;
}

export type ReadinessProbe = () => Promise<ReadinessReport>;
/** A check of the process's own state: synchronous, no I/O. */
export type LocalCheck = () => CheckResult;

export function createReadinessProbe(deps: {
  pool: pg.Pool;
  kafka: Kafka;
  probeWaitMs: number;
  local?: Readonly<Record<string, LocalCheck>>;
}): ReadinessProbe {
  return async () => {
    const [postgres, kafka] = await Promise.all([
      timed(() => withTimeout(deps.pool.query('SELECT 1'), deps.probeWaitMs, 'PostgreSQL did not answer')),
      timed(() => describeCluster(deps.kafka, deps.probeWaitMs)),
    ]);
    const checks: Record<string, CheckResult> = { postgres, kafka };
    for (const [name, check] of Object.entries(deps.local ?? {})) checks[name] = check();
    return { ready: Object.values(checks).every((check) => check.ok), checks };
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
