/**
 * `npm run bench:http`: the gateway under load, with the consumer running, everything on this
 * machine. The gateway and the consumer run as their own processes (as in production); the
 * load comes from autocannon in this one.
 *   async   POST /api/add_funds with `Prefer: respond-async` for BENCH_SECONDS: accepted/s,
 *           then waits until every accepted command is applied;
 *   sync    the same, waiting for each reply: completed/s;
 *   fixed   sync at a fixed BENCH_FIXED_RATE requests/s: latency percentiles;
 *   stages  BENCH_BREAKDOWN_REQUESTS sync requests one at a time, timed stage by stage
 *           (bench/latency-breakdown.ts).
 * Prints a table and writes bench/results/http-<time>.json.
 */
import { bulkPass, recentConsumerRate, type BulkPassResult } from './bulk-pass.ts';
import type { ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import pg from 'pg';
import { measureBreakdown, type StageMs } from './latency-breakdown.ts';
import { freshDatabase } from './support.ts';
import { createKafka, ensureTopics } from '../src/kafka/client.ts';
import { createLogger } from '../src/log.ts';
import { startLocalKafka } from '../src/stack/local-kafka.ts';
import {
  depositPass,
  type PassResult,
  serviceEnv,
  serviceToken,
  startService,
  stopServices,
  waitForHttp,
} from './service-stack.ts';

const settings = {
  seconds: Number(process.env.BENCH_SECONDS ?? 10),
  connections: Number(process.env.BENCH_CONNECTIONS ?? 100),
  hotConnections: Number(process.env.BENCH_HOT_CONNECTIONS ?? 64),
  fixedRate: Number(process.env.BENCH_FIXED_RATE ?? 1_000),
  breakdownRequests: Number(process.env.BENCH_BREAKDOWN_REQUESTS ?? 200),
  users: Number(process.env.BENCH_USERS ?? 1_000),
  bulkClients: Number(process.env.BENCH_BULK_CLIENTS ?? 4),
  bulkSeconds: Number(process.env.BENCH_BULK_SECONDS ?? 10),
  port: Number(process.env.BENCH_PORT ?? 48_000),
  /** The longest wait for the consumer to apply everything accepted in the async pass. */
  drainWaitMs: 300_000,
};
const log = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'bench-http' });
const children: ChildProcess[] = [];

async function main() {
  const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const broker = process.env.KAFKA_BROKERS
    ? null
    : await startLocalKafka({
        dir: '.local/kafka-bench',
        port: 49092,
        controllerPort: 49093,
        heapMb: 1024,
        readyWaitMs: 120_000,
        fresh: true,
        log,
      });
  const brokers = process.env.KAFKA_BROKERS ?? broker!.brokers.join(',');
  try {
    const url = await freshDatabase(serverUrl, 'balance_bench_http');
    const suffix = Date.now().toString(36);
    const env = serviceEnv(url, brokers, suffix, { gateway: settings.port, consumer: 0 });
    await ensureTopics(createKafka({ brokers: brokers.split(','), clientId: 'bench', log }), [
      { topic: env.TOPIC_COMMANDS, partitions: 6 },
      { topic: env.TOPIC_REPLIES, partitions: 6 },
      { topic: env.TOPIC_DEAD_LETTERS, partitions: 6 },
      { topic: env.TOPIC_EVENTS, partitions: 6 },
      { topic: env.TOPIC_ANCHORS, partitions: 1 },
    ]);
    const { token, userId: callerId } = await serviceToken(url);
    children.push(startService('src/consumer/main.ts', env), startService('src/api/main.ts', env));
    await waitForHttp(`http://127.0.0.1:${settings.port}/healthz`);
    const asyncPass = await pass({ token, async: true });
    const drainSeconds = await waitUntilApplied(url, asyncPass.accepted);
    const syncPass = await pass({ token, async: false });
    const fixedPass = await pass({ token, async: false, rate: settings.fixedRate });
    // One hot account: every request waits on the same partition and the same row.
    const hotPass = await pass({ token, async: false, connections: settings.hotConnections, account: HOT_ACCOUNT });
    const hotCheck = await checkHotAccount(url, hotPass.accepted);
    const bulkPasses = [];
    for (const bulkSize of [100, 1_000])
      bulkPasses.push(
        await bulkPass({
          port: settings.port,
          token,
          users: settings.users,
          bulkSize,
          clients: settings.bulkClients,
          seconds: settings.bulkSeconds,
          databaseUrl: url,
          keyPrefix: `bulk${bulkSize}`,
        }),
      );
    const stages = await measureBreakdown({
      baseUrl: `http://127.0.0.1:${settings.port}`,
      token,
      databaseUrl: url,
      brokers: brokers.split(','),
      topics: { commands: env.TOPIC_COMMANDS, replies: env.TOPIC_REPLIES },
      requests: settings.breakdownRequests,
      callerId,
      log,
    });
    await report({
      asyncPass: { ...asyncPass, drainSeconds },
      syncPass,
      fixedPass,
      hotPass: { ...hotPass, ...hotCheck },
      bulkPasses,
      consumer: await recentConsumerRate(3_600_000),
      stages,
    });
  } finally {
    await stopServices(children);
    await broker?.stop();
  }
}

const HOT_ACCOUNT = 900_001;

const pass = (options: { token: string; async: boolean; rate?: number; connections?: number; account?: number }) =>
  depositPass({
    port: settings.port,
    seconds: settings.seconds,
    users: settings.users,
    connections: settings.connections,
    ...options,
  });

/**
 * Every deposit the hot pass got a 2xx for (201 applied, 202 accepted) must be in the account's
 * balance once the consumer caught up, exactly once. Requests still in flight when the load
 * stopped may apply too without being counted by the load generator, so the check is: the
 * balance is 1.00 per applied deposit command (nothing twice), and there are at least as many
 * applied deposits as acknowledged ones (nothing lost).
 */
async function checkHotAccount(
  url: string,
  acknowledged: number,
): Promise<{ balanceMinor: string; appliedDeposits: number; everyAcknowledgedDepositApplied: boolean }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const deadline = Date.now() + settings.drainWaitMs;
    for (;;) {
      const { rows } = await client.query<{ balance: string; applied: number }>(
        "SELECT (SELECT balance FROM accounts WHERE kind = 'user_available' AND owner_id = $1) AS balance, (SELECT count(*)::int FROM commands WHERE user_id = $1 AND status = 'applied') AS applied",
        [HOT_ACCOUNT],
      );
      const balance = BigInt(rows[0]?.balance ?? '0');
      const applied = rows[0]?.applied ?? 0;
      const done = applied >= acknowledged || Date.now() > deadline;
      if (done)
        return {
          balanceMinor: String(balance),
          appliedDeposits: applied,
          everyAcknowledgedDepositApplied: applied >= acknowledged && balance === BigInt(applied) * 100n,
        };
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await client.end();
  }
}

async function waitUntilApplied(url: string, expected: number): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const started = Date.now();
  try {
    while (Date.now() - started < settings.drainWaitMs) {
      const { rows } = await client.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM commands WHERE status = 'applied'",
      );
      if (rows[0]!.n >= expected) return (Date.now() - started) / 1000;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`not every accepted command was applied within ${settings.drainWaitMs} ms`);
  } finally {
    await client.end();
  }
}

async function report(results: {
  asyncPass: PassResult & { drainSeconds: number };
  syncPass: PassResult;
  fixedPass: PassResult;
  hotPass: PassResult & { balanceMinor: string; appliedDeposits: number; everyAcknowledgedDepositApplied: boolean };
  bulkPasses: BulkPassResult[];
  consumer: { file: string; commandsPerSecond: number } | null;
  stages: StageMs;
}) {
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
  const output = { at: new Date().toISOString(), machine, settings, ...results };
  console.log('\npass     requests   2xx/s   non-2xx  errors   p50 ms   p90 ms   p99 ms   max ms');
  for (const [name, r] of [
    ['async', results.asyncPass],
    ['sync', results.syncPass],
    [`fixed ${settings.fixedRate}/s`, results.fixedPass],
    [`hot ${settings.hotConnections}c`, results.hotPass],
  ] as const) {
    console.log(
      `${name.padEnd(8)} ${String(r.requests).padStart(8)} ${String(r.perSecond).padStart(7)} ${String(r.non2xx).padStart(9)} ${String(r.errors).padStart(7)} ${String(r.latencyMs.p50).padStart(8)} ${String(r.latencyMs.p90).padStart(8)} ${String(r.latencyMs.p99).padStart(8)} ${String(r.latencyMs.max).padStart(8)}`,
    );
  }
  console.log(
    `async: all ${results.asyncPass.accepted} accepted commands applied ${results.asyncPass.drainSeconds.toFixed(1)} s after the load ended`,
  );
  console.log(
    `hot account: ${results.hotPass.accepted} deposits acknowledged, ${results.hotPass.appliedDeposits} applied (in flight at the end included), balance ${results.hotPass.balanceMinor} minor units: ${results.hotPass.everyAcknowledgedDepositApplied ? 'every acknowledged deposit applied, each once' : 'MISMATCH'}`,
  );
  console.log("bulk       bulks   commands   seconds   commands/s   non-200   ratio to the consumer's mixed pass");
  for (const b of results.bulkPasses) {
    const ratio = results.consumer ? (b.commandsPerSecond / results.consumer.commandsPerSecond).toFixed(2) : 'n/a';
    console.log(
      `${String(b.bulkSize).padEnd(8)} ${String(b.bulks).padStart(7)} ${String(b.commands).padStart(10)} ${String(b.seconds).padStart(9)} ${String(b.commandsPerSecond).padStart(12)} ${String(b.non200).padStart(9)}   ${ratio}`,
    );
  }
  console.log(
    results.consumer
      ? `the consumer's mixed pass: ${results.consumer.commandsPerSecond}/s (${results.consumer.file}; run npm run bench:consumer just before for a same-session ratio)`
      : 'no bench:consumer result from the last hour: run npm run bench:consumer first for the ratio',
  );
  console.log(`one synchronous request at a time (${settings.breakdownRequests}), ms p50/p90:`);
  for (const [name, s] of Object.entries(results.stages)) console.log(`  ${name.padEnd(20)} ${s.p50}/${s.p90}`);
  console.log(`machine: ${machine.cpus} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB`);
  await mkdir('bench/results', { recursive: true });
  const file = `bench/results/http-${output.at.replaceAll(':', '-')}.json`;
  await writeFile(file, JSON.stringify(output, null, 2));
  console.log(`written: ${file}`);
  if (!results.hotPass.everyAcknowledgedDepositApplied) process.exitCode = 1;
}

await main();
