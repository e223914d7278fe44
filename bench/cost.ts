import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import pg from 'pg';
import { createKafka, ensureTopics } from '../src/kafka/client.ts';
import { createLogger } from '../src/log.ts';
import { startLocalKafka } from '../src/stack/local-kafka.ts';
import { cpuMicros, postgresPids } from './support.ts';
import {
  depositPass,
  type PassResult,
  serviceEnv,
  serviceToken,
  startService,
  stopServices,
  waitForHttp,
} from './service-stack.ts';
import { freshDatabase } from './support.ts';

const settings = {
  seconds: Number(process.env.BENCH_COST_SECONDS ?? 15),
  connections: Number(process.env.BENCH_COST_CONNECTIONS ?? 64),
  users: Number(process.env.BENCH_USERS ?? 1_000),
  gatewayPort: Number(process.env.BENCH_PORT ?? 48_100),
  consumerPort: Number(process.env.BENCH_CONSUMER_PORT ?? 48_101),
  /** BENCH_KEYED=1: every request carries an Idempotency-Key of its own, as a careful client's do. */
  keyed: process.env.BENCH_KEYED === '1',
  /** BENCH_COST_SCENARIOS=sync-hot,sync-users: only those (with BENCH_PROFILE_DIR, to profile one). */
  scenarios: (process.env.BENCH_COST_SCENARIOS ?? 'sync-hot,sync-users,async-hot').split(','),
  /** Load before the scenarios, so that they measure warm processes (the broker's JIT above all). */
  warmUpSeconds: Number(process.env.BENCH_COST_WARMUP_SECONDS ?? 20),
  /** A window with no load, to tell a process's fixed cost per second from its cost per command. */
  idleSeconds: Number(process.env.BENCH_COST_IDLE_SECONDS ?? 5),
  /** The longest wait for the consumer to apply everything an async pass accepted. */
  drainWaitMs: 300_000,
};
const HOT_ACCOUNT = 900_001;
const SCENARIOS = [
  { name: 'sync-hot', async: false, account: HOT_ACCOUNT },
  { name: 'sync-users', async: false, account: undefined },
  { name: 'async-hot', async: true, account: HOT_ACCOUNT },
] as const;
const PROCESSES = ['broker', 'gateway', 'consumer', 'postgres', 'load'] as const;
type ProcessName = (typeof PROCESSES)[number];
const log = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'bench-cost' });

type CpuSnapshot = Record<ProcessName, number>;

async function snapshot(
  pids: { broker: number; gateway: number; consumer: number },
  url: string,
): Promise<CpuSnapshot> {
  const usage = process.cpuUsage();
  const postgres = (await postgresPids(url)).reduce((sum, pid) => sum + cpuMicros(pid), 0);
  return {
    broker: cpuMicros(pids.broker),
    gateway: cpuMicros(pids.gateway),
    consumer: cpuMicros(pids.consumer),
    postgres,
    load: usage.user + usage.system,
  };
}

/** balance_kafka_requests_total of one process's /metrics, by API. */
async function kafkaRequests(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const counts = new Map<string, number>();
  for (const match of text.matchAll(/^balance_kafka_requests_total\{api="([A-Za-z]+)"\} ([0-9]+)$/gm))
    counts.set(match[1]!, Number(match[2]));
  return counts;
}

/** The consumer's chunk writes so far, by path (balance_consumer_chunk_writes_total): none before issue 35. */
async function chunkWrites(): Promise<{ cached: number; sure: number; statements: number }> {
  const text = await (await fetch(`http://127.0.0.1:${settings.consumerPort}/metrics`)).text();
  const of = (path: string) =>
    Number(new RegExp(`^balance_consumer_chunk_writes_total\\{path="${path}"\\} ([0-9]+)$`, 'm').exec(text)?.[1] ?? 0);
  const statements = Number(/^balance_consumer_cached_write_statements_total ([0-9]+)$/m.exec(text)?.[1] ?? 0);
  return { cached: of('cached'), sure: of('sure'), statements };
}

async function allKafkaRequests(): Promise<Map<string, number>> {
  const total = new Map<string, number>();
  for (const port of [settings.gatewayPort, settings.consumerPort])
    for (const [api, n] of await kafkaRequests(port)) total.set(api, (total.get(api) ?? 0) + n);
  return total;
}

async function appliedCommands(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<{ n: number }>("SELECT count(*)::int AS n FROM commands WHERE status = 'applied'"))
      .rows[0]!.n;
  } finally {
    await client.end();
  }
}

async function waitUntilApplied(url: string, expected: number): Promise<void> {
  const deadline = Date.now() + settings.drainWaitMs;
  while ((await appliedCommands(url)) < expected) {
    if (Date.now() > deadline) throw new Error(`fewer than ${expected} commands applied after the drain wait`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** CPU µs per second of each process while nothing is sent: heartbeats, polls, timers, GC. */
async function idleCost(context: {
  url: string;
  pids: { broker: number; gateway: number; consumer: number };
}): Promise<Record<ProcessName, number>> {
  const before = await snapshot(context.pids, context.url);
  const startedAt = performance.now();
  await new Promise((resolve) => setTimeout(resolve, settings.idleSeconds * 1_000));
  const after = await snapshot(context.pids, context.url);
  const seconds = (performance.now() - startedAt) / 1_000;
  return Object.fromEntries(PROCESSES.map((p) => [p, Math.round((after[p] - before[p]) / seconds)])) as Record<
    ProcessName,
    number
  >;
}

interface ScenarioResult {
  readonly name: string;
  readonly pass: PassResult;
  readonly cpuMicrosPerCommand: Record<ProcessName | 'total', number>;
  readonly kafkaRequestsPerCommand: Record<string, number>;
  /** Chunk writes in the window, by path, and commands per write (both paths together). */
  readonly writes: { cached: number; sure: number; statements: number; commandsPerStatement: number };
}

async function runScenario(
  scenario: (typeof SCENARIOS)[number],
  context: { token: string; url: string; pids: { broker: number; gateway: number; consumer: number } },
): Promise<ScenarioResult> {
  const appliedBefore = await appliedCommands(context.url);
  const requestsBefore = await allKafkaRequests();
  const writesBefore = await chunkWrites();
  const before = await snapshot(context.pids, context.url);
  const pass = await depositPass({
    port: settings.gatewayPort,
    token: context.token,
    seconds: settings.seconds,
    connections: settings.connections,
    users: settings.users,
    async: scenario.async,
    keyed: settings.keyed,
    ...(scenario.account === undefined ? {} : { account: scenario.account }),
  });
  // Everything acknowledged is applied before the window closes (async: the whole drain).
  await waitUntilApplied(context.url, appliedBefore + pass.accepted);
  const after = await snapshot(context.pids, context.url);
  const requestsAfter = await allKafkaRequests();
  const writesAfter = await chunkWrites();
  const commands = Math.max(1, pass.accepted);
  const cached = writesAfter.cached - writesBefore.cached;
  const sure = writesAfter.sure - writesBefore.sure;
  // Each sure write is one statement (inside its transaction); cached ones may share one.
  const statements = writesAfter.statements - writesBefore.statements + sure;
  const writes = {
    cached,
    sure,
    statements,
    commandsPerStatement: Number((commands / Math.max(1, statements)).toFixed(1)),
  };
  const cpu = Object.fromEntries(PROCESSES.map((p) => [p, Math.round((after[p] - before[p]) / commands)])) as Record<
    ProcessName,
    number
  >;
  const requests: Record<string, number> = {};
  for (const [api, n] of requestsAfter) {
    const delta = n - (requestsBefore.get(api) ?? 0);
    if (delta > 0) requests[api] = Number((delta / commands).toFixed(3));
  }
  requests.total = Number(
    Object.values(requests)
      .reduce((a, b) => a + b, 0)
      .toFixed(3),
  );
  return {
    name: scenario.name,
    pass,
    cpuMicrosPerCommand: { ...cpu, total: PROCESSES.reduce((sum, p) => sum + cpu[p], 0) },
    kafkaRequestsPerCommand: requests,
    writes,
  };
}

async function main() {
  const serverUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  if (process.env.KAFKA_BROKERS)
    throw new Error('bench:cost starts its own broker, to measure its CPU; unset KAFKA_BROKERS');
  const broker = await startLocalKafka({
    dir: '.local/kafka-bench-cost',
    port: 49_192,
    controllerPort: 49_193,
    heapMb: 1024,
    readyWaitMs: 120_000,
    fresh: true,
    log,
  });
  const brokers = broker.brokers.join(',');
  const children = [];
  try {
    const url = await freshDatabase(serverUrl, 'balance_bench_cost');
    const env = serviceEnv(url, brokers, `cost${Date.now().toString(36)}`, {
      gateway: settings.gatewayPort,
      consumer: settings.consumerPort,
    });
    await ensureTopics(
      createKafka({ brokers: broker.brokers, clientId: 'bench', log }),
      [env.TOPIC_COMMANDS, env.TOPIC_REPLIES, env.TOPIC_DEAD_LETTERS, env.TOPIC_EVENTS, env.TOPIC_ANCHORS].map(
        (topic) => ({
          topic,
          partitions: 6,
        }),
      ),
    );
    const { token } = await serviceToken(url);
    const consumer = startService('src/consumer/main.ts', env);
    const gateway = startService('src/api/main.ts', env);
    children.push(consumer, gateway);
    await waitForHttp(`http://127.0.0.1:${settings.consumerPort}/readyz`);
    await waitForHttp(`http://127.0.0.1:${settings.gatewayPort}/healthz`);
    const pids = { broker: broker.pid, gateway: gateway.pid!, consumer: consumer.pid! };
    // A warm-up as long as the broker's JIT needs: with a 3 s one, its C2 compiler threads still
    // took about a quarter of the broker's CPU during the first scenarios (jcmd Thread.print),
    // which a broker that has run for days does not pay. Both request shapes, at full load.
    for (const users of [undefined, settings.users] as const)
      await depositPass({
        port: settings.gatewayPort,
        token,
        seconds: settings.warmUpSeconds / 2,
        connections: settings.connections,
        users: settings.users,
        ...(users === undefined ? { account: HOT_ACCOUNT - 1 } : {}),
        async: false,
      });
    const idleFirst = await idleCost({ url, pids });
    const results: ScenarioResult[] = [];
    for (const scenario of SCENARIOS.filter((s) => settings.scenarios.includes(s.name)))
      results.push(await runScenario(scenario, { token, url, pids }));
    // Again once every process is warm (the broker's JIT runs well past a short warm-up).
    const idle = { afterWarmUp: idleFirst, afterScenarios: await idleCost({ url, pids }) };
    await report(results, idle);
  } finally {
    await stopServices(children);
    await broker.stop();
  }
}

async function report(
  results: readonly ScenarioResult[],
  idle: { afterWarmUp: Record<ProcessName, number>; afterScenarios: Record<ProcessName, number> },
) {
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
  const pad = (value: unknown, width: number) => String(value).padStart(width);
  console.log(
    `\nCPU µs per acknowledged command, by process (${settings.seconds} s a scenario, ${settings.connections} connections${settings.keyed ? ', an Idempotency-Key on each request' : ''})`,
  );
  console.log(
    `scenario     rate/s  p50 ms  p99 ms ${PROCESSES.map((p) => pad(p, 9)).join('')}    total  kafka req/cmd`,
  );
  for (const r of results) {
    const cpu = r.cpuMicrosPerCommand;
    const requests = Object.entries(r.kafkaRequestsPerCommand)
      .filter(([api]) => api !== 'total')
      .map(([api, n]) => `${api} ${n}`)
      .join(', ');
    console.log(
      `${r.name.padEnd(11)} ${pad(r.pass.perSecond, 7)} ${pad(r.pass.latencyMs.p50, 7)} ${pad(r.pass.latencyMs.p99, 7)} ${PROCESSES.map((p) => pad(cpu[p], 9)).join('')} ${pad(cpu.total, 8)}  ${r.kafkaRequestsPerCommand.total} (${requests})`,
    );
  }
  console.log('chunks written cached / sure, in statements, commands per statement');
  for (const r of results)
    console.log(
      `  ${r.name.padEnd(11)} ${r.writes.cached} / ${r.writes.sure}, ${r.writes.statements}, ${r.writes.commandsPerStatement}`,
    );
  console.log(`idle: CPU µs per second with no load (${settings.idleSeconds} s), ${PROCESSES.join(' / ')}`);
  for (const [when, cost] of Object.entries(idle))
    console.log(`  ${when.padEnd(15)} ${PROCESSES.map((p) => pad(cost[p], 9)).join('')}`);
  console.log(`machine: ${machine.cpus} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB, Node ${machine.node}`);
  const output = { at: new Date().toISOString(), machine, settings, idleCpuMicrosPerSecond: idle, results };
  await mkdir('bench/results', { recursive: true });
  const file = `bench/results/cost-${output.at.replaceAll(':', '-')}.json`;
  await writeFile(file, JSON.stringify(output, null, 2));
  console.log(`written: ${file}`);
  for (const r of results)
    if (r.pass.errors > 0 || r.pass.non2xx > 0) {
      console.log(`${r.name}: ${r.pass.non2xx} non-2xx answers and ${r.pass.errors} errors`);
      process.exitCode = 1;
    }
}

await main();
