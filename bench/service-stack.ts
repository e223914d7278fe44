/**
 * What the HTTP benchmarks share: the gateway and the consumer as their own processes (as in
 * production) against one broker and one database, a service token, and autocannon passes of
 * POST /api/add_funds/.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import autocannon from 'autocannon';
import { TokenService } from '../src/api/auth/tokens.ts';
import { loadConfig } from '../src/config.ts';
import { createPool } from '../src/db/pool.ts';
import { insertUser } from '../src/users/store.ts';

/** The environment of the gateway and the consumer of one benchmark run. */
export function serviceEnv(url: string, brokers: string, suffix: string, ports: { gateway: number; consumer: number }) {
  return {
    DATABASE_URL: url,
    KAFKA_BROKERS: brokers,
    TOPIC_COMMANDS: `bench.http.${suffix}.commands`,
    TOPIC_REPLIES: `bench.http.${suffix}.replies`,
    TOPIC_DEAD_LETTERS: `bench.http.${suffix}.dlq`,
    TOPIC_EVENTS: `bench.http.${suffix}.events`,
    TOPIC_ANCHORS: `bench.http.${suffix}.anchors`,
    CONSUMER_GROUP: `bench-http-${suffix}`,
    PORT: String(ports.gateway),
    LOG_LEVEL: 'warn',
    PG_POOL_CONNECTIONS_MAX: '20',
    // A benchmark on one machine: the built-in secrets are fine, and every process shares them.
    ALLOW_DEV_SECRETS: 'true',
    ALLOW_MISSING_IDEMPOTENCY_KEY: 'true',
    // One token sends everything here: the per-principal limit would cap the benchmark, not the service.
    RATE_LIMIT_PER_S: '0',
    // Nor the per-caller cap on stored bulk items: past it bulks are refused (429), and the bulk
    // pass would wait for commands that were never accepted.
    BULK_ITEMS_STORED_PER_HOUR_MAX: '100000000',
    CONSUMER_HTTP_PORT: String(ports.consumer),
  };
}

/**
 * Runs a TypeScript entry point as a child process, through tsx; with BENCH_FROM_DIST=1, its
 * compiled dist/ file instead, as production runs it (build first: `npm run build`).
 * BENCH_PROFILE_DIR=<dir> writes CPU profiles there.
 */
export function startService(entry: string, env: Record<string, string>): ChildProcess {
  const profile = process.env.BENCH_PROFILE_DIR
    ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
    : [];
  const run = process.env.BENCH_FROM_DIST
    ? [entry.replace(/^src\//, 'dist/').replace(/\.ts$/, '.js')]
    : ['--import', 'tsx', entry];
  return spawn(process.execPath, [...profile, ...run], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

export async function stopServices(children: readonly ChildProcess[]): Promise<void> {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(
    children.map(
      (child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve))),
    ),
  );
}

export async function waitForHttp(url: string, waitMs = 60_000): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline) {
    const ok = await fetch(url).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${url} did not answer within ${waitMs} ms`);
}

/** A service account in the database, and an access token for it. */
export async function serviceToken(url: string): Promise<{ token: string; userId: number }> {
  const pool = createPool(url, loadConfig({}, { secrets: 'unused' }).db, 'bench');
  const id = await insertUser(pool, `bench-${Date.now()}`, 'scrypt$1$1$1$x$x', 'service');
  await pool.end();
  const token = await new TokenService(loadConfig({ ALLOW_DEV_SECRETS: 'true', ...process.env }).jwt).issueAccess({
    userId: id,
    role: 'service',
    version: 0,
  });
  return { token, userId: id };
}

export interface PassResult {
  readonly requests: number;
  readonly accepted: number;
  readonly perSecond: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly latencyMs: { p50: number; p90: number; p99: number; max: number };
}

export interface PassOptions {
  readonly port: number;
  readonly token: string;
  readonly seconds: number;
  readonly connections: number;
  /** `Prefer: respond-async`: 202 at once instead of waiting for the outcome. */
  readonly async: boolean;
  /** Requests per second in all; unset: as fast as the connections go. */
  readonly rate?: number;
  /** One account for every request; unset: users 1..users in turn. */
  readonly account?: number;
  readonly users: number;
  /**
   * An Idempotency-Key of its own on every request, as a careful client sends (BENCH_KEYED=1);
   * unset: none (the bench stacks allow that), so the gateway never looks a key up.
   */
  readonly keyed?: boolean;
}

/** Deposits of 1.00 for `seconds`; 2xx (201 applied, 202 accepted) count as accepted. */
export async function depositPass(options: PassOptions): Promise<PassResult> {
  let sequence = 0;
  const passId = `pass-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const result = await autocannon({
    url: `http://127.0.0.1:${options.port}/api/add_funds/`,
    method: 'POST',
    connections: options.connections,
    duration: options.seconds,
    ...(options.rate ? { overallRate: options.rate } : {}),
    headers: {
      authorization: `Bearer ${options.token}`,
      'content-type': 'application/json',
      ...(options.async ? { prefer: 'respond-async' } : {}),
    },
    requests: [
      {
        setupRequest: (request: autocannon.Request) => {
          sequence += 1;
          return {
            ...request,
            ...(options.keyed ? { headers: { ...request.headers, 'idempotency-key': `${passId}-${sequence}` } } : {}),
            body: JSON.stringify({ user_id: options.account ?? 1 + (sequence % options.users), amount: '1.00' }),
          };
        },
      },
    ],
  });
  const accepted = result['2xx'];
  return {
    requests: result.requests.total,
    accepted,
    perSecond: Math.round(accepted / options.seconds),
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    latencyMs: { p50: result.latency.p50, p90: result.latency.p90, p99: result.latency.p99, max: result.latency.max },
  };
}
