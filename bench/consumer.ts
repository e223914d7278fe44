/**
 * `npm run bench:consumer`: how fast the consumer applies commands, against the real broker
 * and PostgreSQL on this machine.
 *   mixed   preloads BENCH_MIXED_COMMANDS (200,000) commands over BENCH_USERS (10,000) users,
 *           then times the consumer from its first chunk to the last applied command;
 *   hot     BENCH_HOT_COMMANDS (100,000) commands, all for ONE user;
 *   ceiling the same writes per command as the mixed pass's minimum, set-based, in the same
 *           batch sizes, from 2 clients: what PostgreSQL alone manages here;
 *   plain   what a service without Kafka would do: one PostgreSQL transaction per deposit on
 *           ONE account, from 1, 4 and 64 clients, for BENCH_PLAIN_SECONDS each.
 * Prints a table and writes bench/results/consumer-<time>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import inspector from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, withOverrides, type Config } from '../src/config.ts';
import { createCommandWorker } from '../src/consumer/worker.ts';
import { migrate } from '../src/db/migrate.ts';
import { createPool, inTransaction, type Pool } from '../src/db/pool.ts';
import { cpuMicros, freshDatabase, postgresPids } from './support.ts';
import { createKafka, ensureTopics, PRODUCER_OPTIONS, type Kafka } from '../src/kafka/client.ts';
import { createLogger } from '../src/log.ts';
import { startLocalKafka } from '../src/stack/local-kafka.ts';
import { unsettledTransfers, verifyLedger } from '../src/ledger/verify.ts';
import { hotAccountCommands, mixedCommands } from './workloads.ts';

const settings = {
  mixedCommands: Number(process.env.BENCH_MIXED_COMMANDS ?? 200_000),
  hotCommands: Number(process.env.BENCH_HOT_COMMANDS ?? 100_000),
  users: Number(process.env.BENCH_USERS ?? 10_000),
  partitions: Number(process.env.BENCH_PARTITIONS ?? 6),
  batchCommandsMax: Number(process.env.BATCH_COMMANDS_MAX ?? 2_000),
  /** A pass that has not finished after this long is reported as failed. */
  passWaitMs: Number(process.env.BENCH_PASS_WAIT_MS ?? 600_000),
  plainSeconds: Number(process.env.BENCH_PLAIN_SECONDS ?? 10),
};

const log = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'bench' });

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
  const brokers = process.env.KAFKA_BROKERS?.split(',') ?? broker!.brokers;
  try {
    const kafka = createKafka({ brokers, clientId: 'bench', log });
    const mixed = await runPass(
      'mixed',
      serverUrl,
      kafka,
      brokers,
      mixedCommands(settings.mixedCommands, settings.users),
      broker?.pid ?? null,
    );
    const hot = await runPass(
      'hot',
      serverUrl,
      kafka,
      brokers,
      hotAccountCommands(settings.hotCommands, 1),
      broker?.pid ?? null,
    );
    const ceiling = await measureCeiling(serverUrl, settings.mixedCommands, settings.batchCommandsMax);
    const plain = [];
    for (const clients of PLAIN_CLIENTS) plain.push(await measurePlainTransactions(serverUrl, clients));
    await report({ mixed, hot, ceiling, plain });
  } finally {
    await broker?.stop();
  }
}

interface PassResult {
  readonly commands: number;
  readonly seconds: number;
  readonly commandsPerSecond: number;
  readonly applied: number;
  /** Transfers' settles, applied on the recipients' partitions within the timed span. */
  readonly settled: number;
  readonly rejected: number;
  readonly retries: number;
  readonly ledgerVerified: boolean;
  /** CPU per command over the pass, by process (this one runs the consumer), in µs. */
  readonly cpuMicrosPerCommand: PassCpu;
}

interface PassCpu {
  readonly consumer: number;
  readonly postgres: number;
  /** Null when the broker is not this machine's (KAFKA_BROKERS given). */
  readonly broker: number | null;
}

/**
 * BENCH_PROFILE_DIR=<dir> records a V8 CPU profile of this process over each pass only (not the
 * preload, the ceiling or the plain runs), as <dir>/consumer-<pass>.cpuprofile, for
 * `npm run bench:profile -- <dir>`.
 */
async function profiled<T>(name: string, work: () => Promise<T>): Promise<T> {
  const dir = process.env.BENCH_PROFILE_DIR;
  if (!dir) return work();
  const session = new inspector.Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  try {
    return await work();
  } finally {
    const { profile } = await session.post('Profiler.stop');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `consumer-${name}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
}

/** CPU used so far, in µs: this process (the consumer, and the pass's polling), PostgreSQL, the broker. */
async function cpuNow(serverUrl: string, brokerPid: number | null): Promise<PassCpu> {
  const own = process.cpuUsage();
  const postgres = (await postgresPids(serverUrl)).reduce((sum, pid) => sum + cpuMicros(pid), 0);
  return { consumer: own.user + own.system, postgres, broker: brokerPid === null ? null : cpuMicros(brokerPid) };
}

function perCommand(before: PassCpu, after: PassCpu, commands: number): PassCpu {
  const each = (a: number, b: number) => Math.round((b - a) / commands);
  return {
    consumer: each(before.consumer, after.consumer),
    postgres: each(before.postgres, after.postgres),
    broker: before.broker === null || after.broker === null ? null : each(before.broker, after.broker),
  };
}

async function runPass(
  name: string,
  serverUrl: string,
  kafka: Kafka,
  brokers: string[],
  commands: ReadonlyArray<{ key: string; value: string }>,
  brokerPid: number | null,
): Promise<PassResult> {
  const database = `balance_bench_${name}`;
  const url = await freshDatabase(serverUrl, database);
  const config = benchConfig(url, brokers, name);
  await ensureTopics(kafka, [
    { topic: config.topics.commands, partitions: settings.partitions },
    { topic: config.topics.replies, partitions: settings.partitions },
    { topic: config.topics.deadLetters, partitions: settings.partitions },
    { topic: config.topics.events, partitions: settings.partitions },
  ]);
  console.log(`[${name}] preloading ${commands.length} commands`);
  await preload(kafka, config.topics.commands, commands);
  const pool = createPool(url, config.db, 'bench');
  const worker = createCommandWorker({ config, kafka, pool, log });
  console.log(`[${name}] consuming`);
  const cpuBefore = await cpuNow(serverUrl, brokerPid);
  const deadline = Date.now() + settings.passWaitMs;
  const decided = () => worker.stats.applied + worker.stats.rejected + worker.stats.duplicates >= commands.length;
  await profiled(name, async () => {
    await worker.start();
    while (!decided() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    // A transfer is finished when its settle is applied on the recipient's partition.
    while (decided() && (await unsettledTransfers(pool)).minor !== 0n && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 20));
  });
  const finishedAt = worker.stats.lastAppliedAt ?? Date.now();
  const cpuAfter = await cpuNow(serverUrl, brokerPid);
  await worker.stop();
  if (!decided() || (await unsettledTransfers(pool)).minor !== 0n)
    throw new Error(`[${name}] did not finish within ${settings.passWaitMs} ms`);
  const seconds = (finishedAt - worker.stats.firstChunkAt!) / 1000;
  const violations = await verifyLedger(pool);
  // A failed verify names what failed, not only that it did.
  if (violations.length > 0)
    console.error(`[${name}] verify: ${JSON.stringify(violations.map((v) => [v.check, v.rows.slice(0, 3)]))}`);
  await pool.end();
  return {
    commands: commands.length,
    seconds,
    commandsPerSecond: Math.round(commands.length / seconds),
    applied: worker.stats.applied,
    settled: worker.stats.settled,
    rejected: worker.stats.rejected,
    retries: worker.stats.retries,
    ledgerVerified: violations.length === 0,
    cpuMicrosPerCommand: perCommand(cpuBefore, cpuAfter, commands.length),
  };
}

function benchConfig(url: string, brokers: string[], name: string): Config {
  const suffix = `${name}.${Date.now().toString(36)}`;
  return withOverrides(
    loadConfig({
      ALLOW_DEV_SECRETS: 'true',
      ...process.env,
      LOG_LEVEL: 'warn',
      BATCH_COMMANDS_MAX: String(settings.batchCommandsMax),
    }),
    {
      db: { url },
      kafka: { brokers },
      topics: {
        commands: `bench.${suffix}.commands`,
        replies: `bench.${suffix}.replies`,
        deadLetters: `bench.${suffix}.dlq`,
        events: `bench.${suffix}.events`,
        anchors: `bench.${suffix}.anchors`,
        commandPartitions: settings.partitions,
      },
      consumer: { group: `bench-${suffix}` },
      // What is measured is the write path, hashing included; an hourly anchor is not part of it.
      anchors: { intervalS: 0 },
    },
  );
}

async function preload(kafka: Kafka, topic: string, messages: ReadonlyArray<{ key: string; value: string }>) {
  const producer = kafka.producer({ ...PRODUCER_OPTIONS, allowAutoTopicCreation: true });
  await producer.connect();
  const pending: Promise<unknown>[] = [];
  for (let i = 0; i < messages.length; i += 10_000) {
    pending.push(producer.send({ topic, acks: -1, compression: 0, messages: messages.slice(i, i + 10_000) }));
    if (pending.length >= 4) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  await producer.disconnect();
}

/**
 * The fair ceiling: the least this data model asks of PostgreSQL per command, set-based, in the
 * consumer's batch size, from CEILING_CLIENTS connections at once, on the project's own schema
 * (migrated into a fresh database). Per command: the rows of writeMinimum, spread over the same
 * number of users as the mixed pass. No Kafka, no decisions, no reads: whatever the consumer does beyond
 * this is its own cost.
 */
async function measureCeiling(serverUrl: string, commands: number, batch: number) {
  const { pool, accountIds, external } = await ceilingDatabase(serverUrl, 'balance_bench_ceiling', CEILING_CLIENTS);
  const batchCount = Math.ceil(commands / batch);
  const cpuBefore = await cpuNow(serverUrl, null);
  const started = performance.now();
  let next = 0;
  const client = async () => {
    for (let b = next++; b < batchCount; b = next++) {
      const first = b * batch;
      const users = Array.from(
        { length: Math.min(batch, commands - first) },
        (_, i) => 1 + ((first + i) % settings.users),
      );
      await writeMinimum(pool, `ceiling-${b}`, users, accountIds, external);
    }
  };
  await Promise.all(Array.from({ length: CEILING_CLIENTS }, () => client()));
  const seconds = (performance.now() - started) / 1000;
  const cpu = perCommand(cpuBefore, await cpuNow(serverUrl, null), commands);
  await pool.end();
  return {
    commands,
    postgresCpuMicrosPerCommand: cpu.postgres,
    batchCommands: batch,
    clients: CEILING_CLIENTS,
    seconds,
    commandsPerSecond: Math.round(commands / seconds),
  };
}

const CEILING_CLIENTS = 2;
const PLAIN_CLIENTS = [1, 4, 64] as const;

/**
 * The design a user would pick instead of this service: every deposit its own PostgreSQL
 * transaction, with the same writes as the ceiling, all on ONE account (so they queue on its row
 * lock), from `clients` connections for BENCH_PLAIN_SECONDS.
 */
async function measurePlainTransactions(serverUrl: string, clients: number) {
  const { pool, accountIds, external } = await ceilingDatabase(serverUrl, 'balance_bench_plain', clients);
  const endAt = performance.now() + settings.plainSeconds * 1000;
  let committed = 0;
  const latenciesMs: number[] = [];
  const client = async (c: number) => {
    for (let i = 0; performance.now() < endAt; i++) {
      const sent = performance.now();
      await writeMinimum(pool, `plain-${clients}-${c}-${i}`, [1], accountIds, external);
      latenciesMs.push(performance.now() - sent);
      committed++;
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  const seconds = (performance.now() - started) / 1000;
  const balance = (await pool.query<{ balance: string }>('SELECT balance FROM accounts WHERE id = $1', [accountIds[0]]))
    .rows[0]!.balance;
  await pool.end();
  latenciesMs.sort((a, b) => a - b);
  const at = (q: number) =>
    Number(latenciesMs[Math.min(latenciesMs.length - 1, Math.floor(q * latenciesMs.length))]!.toFixed(1));
  return {
    clients,
    commands: committed,
    seconds,
    commandsPerSecond: Math.round(committed / seconds),
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    balanceMatches: BigInt(balance) === BigInt(committed) * 100n,
  };
}

/** A fresh migrated database with one available account per user, as the mixed pass has them. */
async function ceilingDatabase(serverUrl: string, name: string, clients: number) {
  const url = await freshDatabase(serverUrl, name);
  const db = { ...loadConfig({}, { secrets: 'unused' }).db };
  const pool = createPool(url, { ...db, poolConnectionsMax: Math.max(db.poolConnectionsMax, clients) }, name);
  await migrate(pool);
  await pool.query(
    "INSERT INTO accounts (kind, owner_id) SELECT 'user_available', u FROM generate_series(1, $1::int) AS u",
    [settings.users],
  );
  const accountIds = (
    await pool.query<{ id: string }>("SELECT id FROM accounts WHERE kind = 'user_available' ORDER BY owner_id")
  ).rows.map((r) => r.id);
  const external = (await pool.query<{ id: string }>("SELECT id FROM accounts WHERE kind = 'external' AND stripe = 0"))
    .rows[0]!.id;
  return { pool, accountIds, external };
}

/** Balance-event sequence numbers, unique across every minimum write of this process. */
let eventSequence = 0;
/** An event payload of 200 bytes, the size of a deposit's balance event. */
const EVENT_PAYLOAD = JSON.stringify({ event: 'balance_changed', pad: 'x'.repeat(160) });

/**
 * One transaction: per user in `users` (1-based), a deposit of 1.00 with the minimum writes of
 * today's data model (issue 19's fair ceiling): a `commands` row, a `postings` row with the
 * balance and version after it, a `transactions` row, a `balance_events` row with a 200-byte
 * payload, and the account's balance and version.
 */
async function writeMinimum(
  pool: Pool,
  idPrefix: string,
  users: readonly number[],
  accountIds: readonly string[],
  external: string,
) {
  const ids = users.map((_, i) => `${idPrefix}-${i}`);
  const accounts = users.map((u) => accountIds[u - 1]!);
  const sequences = users.map(() => ++eventSequence);
  await inTransaction(pool, async (db) => {
    await db.query(
      "INSERT INTO commands (id, fingerprint, type, user_id, status, code, principal) SELECT id, 'f', 'deposit', u, 'applied', 'ok', 'bench' FROM unnest($1::text[], $2::bigint[]) AS k(id, u)",
      [ids, users],
    );
    await db.query(
      'INSERT INTO postings (command_id, debit_account_id, credit_account_id, amount, credit_balance_after, version_after) SELECT id, $3::bigint, a, 100, 100, s FROM unnest($1::text[], $2::bigint[], $4::bigint[]) AS k(id, a, s)',
      [ids, accounts, external, sequences],
    );
    await db.query(
      "INSERT INTO transactions (id, command_id, user_id, amount, transaction_type) SELECT nextval('transactions_id_seq'), id, u, 100, 'deposit' FROM unnest($1::text[], $2::bigint[]) AS k(id, u)",
      [ids, users],
    );
    await db.query(
      'INSERT INTO balance_events (user_id, sequence, part, command_id, payload) SELECT u, s, 0, id, $4 FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS k(id, u, s)',
      [ids, users, sequences, EVENT_PAYLOAD],
    );
    // One update per command's user account (several commands of one user add up), in id order.
    await db.query(
      'UPDATE accounts a SET balance = a.balance + k.delta, version = a.version + k.n FROM (SELECT a AS id, count(*) * 100 AS delta, count(*) AS n FROM unnest($1::bigint[]) AS a GROUP BY a) k WHERE a.id = k.id',
      [accounts],
    );
  });
}

async function report(results: {
  mixed: PassResult;
  hot: PassResult;
  ceiling: Awaited<ReturnType<typeof measureCeiling>>;
  plain: Awaited<ReturnType<typeof measurePlainTransactions>>[];
}) {
  const ratio = results.mixed.commandsPerSecond / results.ceiling.commandsPerSecond;
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
  };
  const output = {
    at: new Date().toISOString(),
    machine,
    settings,
    ...results,
    ratioToCeiling: Number(ratio.toFixed(3)),
  };
  console.log('\npass      commands   seconds   commands/s   applied   settled   rejected   retries   verify');
  for (const [name, r] of [
    ['mixed', results.mixed],
    ['hot', results.hot],
  ] as const) {
    console.log(
      `${name.padEnd(9)} ${String(r.commands).padStart(8)} ${r.seconds.toFixed(2).padStart(9)} ${String(r.commandsPerSecond).padStart(12)} ${String(r.applied).padStart(9)} ${String(r.settled).padStart(9)} ${String(r.rejected).padStart(10)} ${String(r.retries).padStart(9)}   ${r.ledgerVerified ? 'ok' : 'FAILED'}`,
    );
  }
  console.log(
    `ceiling   ${String(results.ceiling.commands).padStart(8)} ${results.ceiling.seconds.toFixed(2).padStart(9)} ${String(results.ceiling.commandsPerSecond).padStart(12)}   (per command: a commands, postings, transactions and 200-byte balance_events row, a balance and version update; ${results.ceiling.batchCommands} per transaction, ${results.ceiling.clients} clients)`,
  );
  console.log('CPU µs per command over each pass: consumer (this process) / PostgreSQL / broker');
  for (const [name, r] of [
    ['mixed', results.mixed],
    ['hot', results.hot],
  ] as const) {
    const cpu = r.cpuMicrosPerCommand;
    console.log(`  ${name.padEnd(8)} ${cpu.consumer} / ${cpu.postgres} / ${cpu.broker ?? 'n/a'}`);
  }
  console.log(`  ceiling  - / ${results.ceiling.postgresCpuMicrosPerCommand} / -`);
  console.log(
    `ratio of mixed to ceiling: ${ratio.toFixed(3)}   machine: ${machine.cpus} cores, ${machine.cpuModel}, ${machine.memoryGiB} GiB`,
  );
  console.log('\nplain PostgreSQL, one transaction per deposit, one account:');
  console.log('clients   commands   seconds   commands/s   p50 ms   p99 ms   balance');
  for (const p of results.plain)
    console.log(
      `${String(p.clients).padStart(7)} ${String(p.commands).padStart(10)} ${p.seconds.toFixed(2).padStart(9)} ${String(p.commandsPerSecond).padStart(12)} ${String(p.p50Ms).padStart(8)} ${String(p.p99Ms).padStart(8)}   ${p.balanceMatches ? 'ok' : 'WRONG'}`,
    );
  await mkdir('bench/results', { recursive: true });
  const file = `bench/results/consumer-${output.at.replaceAll(':', '-')}.json`;
  await writeFile(file, JSON.stringify(output, null, 2));
  console.log(`written: ${file}`);
  if (!results.mixed.ledgerVerified || !results.hot.ledgerVerified || results.plain.some((p) => !p.balanceMatches))
    process.exitCode = 1;
}

await main();
