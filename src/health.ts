/**
 * Readiness probes shared by the gateway and the consumer: PostgreSQL answers a query and the
 * Kafka admin client can describe the cluster, each within a bounded time, plus any checks of
 * the process's own state (the consumer: joined its group, no partition paused).
 *
 * /readyz is unauthenticated, so what it costs must not depend on how often it is called. The
 * PostgreSQL and Kafka checks run at most once per READINESS_REFRESH_MS, one at a time; every
 * call in between answers from the last result. A few hundred concurrent calls therefore take
 * one pool connection and one admin request a second, not one each (which starved the
 * consumer's own pool). The answer names what failed in fixed words, never an internal error
 * message; the message goes to the log when a check turns bad.
 */
import type pg from 'pg';
import { describeCluster, type Kafka, withTimeout } from './kafka/client.ts';
import type { Logger } from './log.ts';

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

/** How old a PostgreSQL or Kafka check may be before a call runs it again. */
export const READINESS_REFRESH_MS = 1_000;

export function createReadinessProbe(deps: {
  pool: pg.Pool;
  kafka: Kafka;
  probeWaitMs: number;
  local?: Readonly<Record<string, LocalCheck>>;
  log?: Logger;
  refreshMs?: number;
}): ReadinessProbe {
  const refreshMs = deps.refreshMs ?? READINESS_REFRESH_MS;
  let last: { at: number; checks: Record<'postgres' | 'kafka', CheckResult> } | null = null;
  let refreshing: Promise<void> | null = null;
  const refresh = async () => {
    const [postgres, kafka] = await Promise.all([
      timed('postgres', 'PostgreSQL did not answer', deps.log, () =>
        withTimeout(deps.pool.query('SELECT 1'), deps.probeWaitMs, 'PostgreSQL did not answer in time'),
      ),
      timed('kafka', 'the Kafka cluster could not be described', deps.log, () =>
        describeCluster(deps.kafka, deps.probeWaitMs),
      ),
    ]);
    if (deps.log && last)
      for (const [name, check] of Object.entries({ postgres, kafka }))
        if (check.ok && !last.checks[name as 'postgres' | 'kafka'].ok)
          deps.log.info({ check: name }, 'readiness check passes again');
    last = { at: Date.now(), checks: { postgres, kafka } };
  };
  return async () => {
    if (last === null || Date.now() - last.at >= refreshMs) {
      refreshing ??= refresh().finally(() => {
        refreshing = null;
      });
      await refreshing;
    }
    const checks: Record<string, CheckResult> = { ...last!.checks };
    for (const [name, check] of Object.entries(deps.local ?? {})) checks[name] = check();
    return { ready: Object.values(checks).every((check) => check.ok), checks };
  };
}

async function timed(
  name: string,
  failure: string,
  log: Logger | undefined,
  check: () => Promise<unknown>,
): Promise<CheckResult> {
  const started = performance.now();
  try {
    await check();
    return { ok: true, latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    log?.warn({ check: name, err: error }, `readiness check failed: ${failure}`);
    return { ok: false, latencyMs: Math.round(performance.now() - started), error: failure };
  }
}
