/**
 * The bank test with faults (Jepsen's bank workload, on this service). Users start with known
 * balances; concurrent clients move money over HTTP and straight through Kafka, retrying with
 * the same idempotency key and duplicating on purpose, while the consumer and the gateway are
 * SIGKILLed, the broker is stopped and started, and PostgreSQL connections are terminated.
 * Afterwards every command any caller saw applied has exactly one effect, nothing Kafka
 * acknowledged is lost, money is conserved to the kopeck, and `verify` passes.
 *
 * Sizes come from FAULTS_* variables; CI runs the defaults, `npm run test:faults` a longer run.
 * The report is printed and written to bench/results/faults-<time>.json.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenService } from '../../src/api/auth/tokens.ts';
import type { Config } from '../../src/config.ts';
import { javaCompatiblePartitioner, type Kafka, type Producer } from '../../src/kafka/client.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { startLocalKafka, type LocalKafka } from '../../src/stack/local-kafka.ts';
import { insertUser } from '../../src/users/store.ts';
import { seededRandom } from '../../bench/workloads.ts';
import { settlesPerTransfer, waitForSettles } from '../helpers/commands.ts';
import { envFor, spawnService, type ServiceProcess } from '../helpers/processes.ts';
import { createTestDatabase, createTestTopics, eventually, testConfig, testKafka, testLog, type TestDatabase } from '../helpers/stack.ts';

const settings = {
  users: Number(process.env.FAULTS_USERS ?? 20),
  clients: Number(process.env.FAULTS_CLIENTS ?? 8),
  seconds: Number(process.env.FAULTS_SECONDS ?? 40),
  faultEveryMs: Number(process.env.FAULTS_EVERY_MS ?? 4_000),
  retriesMax: 3,
  initialMinor: 100_000n,
};
const GATEWAY_PORT = 39_380;
const BROKER = { dir: '.local/kafka-faults', port: 39_292, controllerPort: 39_293 };

type Seen = 'applied' | 'rejected' | 'unknown';
interface Issued {
  readonly id: string;
  readonly type: string;
  readonly amountMinor: bigint;
  seen: Seen;
  acked: boolean;
  sends: number;
}

describe('the bank test with injected faults', () => {
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  let broker: LocalKafka;
  let consumer: ServiceProcess;
  let gateway: ServiceProcess;
  const issued = new Map<string, Issued>();
  const faults: Record<string, number> = { consumer_sigkill: 0, gateway_sigkill: 0, broker_restart: 0, pg_terminate: 0 };

  beforeAll(async () => {
    broker = await startLocalKafka({ ...BROKER, heapMb: 512, readyWaitMs: 120_000, fresh: true, log: testLog });
    db = await createTestDatabase();
    config = testConfig(db, { kafka: { brokers: broker.brokers }, http: { port: GATEWAY_PORT }, limits: { replyWaitMs: 5_000 } });
    kafka = testKafka(config);
    await createTestTopics(kafka, config);
  });
  afterAll(async () => {
    await consumer?.kill('SIGKILL');
    await gateway?.kill('SIGKILL');
    await broker?.stop();
    await db?.drop();
  });

  const env = () => ({ ...envFor(config), PORT: String(GATEWAY_PORT), REPLY_WAIT_MS: '5000' });
  const startConsumer = () => (consumer = spawnService('src/consumer/main.ts', env()));
  const startGateway = () => (gateway = spawnService('src/api/main.ts', env()));

  it('keeps every promise while processes, the broker and connections fail', async () => {
    const started = Date.now();
    startConsumer();
    startGateway();
    const token = await serviceToken(db, config);
    const producer = kafka.producer({ idempotent: true, createPartitioner: javaCompatiblePartitioner, retry: { retries: 2 } });
    await producer.connect();
    await fund(producer, config, issued);
    await eventually(async () => (await decided(db, [...issued.keys()])) === issued.size ? true : undefined, 120_000, 'initial deposits');

    const deadline = Date.now() + settings.seconds * 1_000;
    const load = Array.from({ length: settings.clients }, (_, i) => client(i, deadline, token, producer, config, issued));
    const chaos = injectFaults(deadline, { faults, db, broker: () => broker, consumer: () => consumer, gateway: () => gateway, startConsumer, startGateway });
    await Promise.all([...load, chaos]);
    await producer.disconnect();

    // Make sure the service is whole again, then let it drain.
    if (consumer.child.exitCode !== null || consumer.child.signalCode !== null) startConsumer();
    const acked = [...issued.values()].filter((c) => c.acked).map((c) => c.id);
    await eventually(async () => ((await decided(db, acked)) === acked.length ? true : undefined), 180_000, 'every acknowledged command to be decided');
    await waitForSettles(db.pool, 180_000);

    const report = await check(db, issued, faults, started);
    console.log(`bank test with faults: ${JSON.stringify(report, null, 2)}`);
    await mkdir('bench/results', { recursive: true });
    await writeFile(`bench/results/faults-${new Date().toISOString().replaceAll(':', '-')}.json`, JSON.stringify({ settings: { ...settings, initialMinor: String(settings.initialMinor) }, machine: { cpus: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30) }, ...report }, null, 2));
    expect(report.lost).toBe(0);
    expect(report.doubleApplied).toBe(0);
    expect(report.seenAppliedButNotApplied).toBe(0);
    expect(report.seenRejectedButNotRejected).toBe(0);
    expect(report.conservedToTheKopeck).toBe(true);
    expect(report.transfersWithoutExactlyOneSettle).toBe(0);
    expect(report.verifyViolations).toEqual([]);
    expect(Object.values(faults).every((n) => n > 0)).toBe(true);
  }, (settings.seconds + 300) * 1_000);
});

async function serviceToken(db: TestDatabase, config: Config): Promise<string> {
  const id = await insertUser(db.pool, `faults-${randomUUID()}`, 'scrypt$1$1$1$x$x', 'service');
  return new TokenService(config.jwt).issue({ userId: id, role: 'service' }, 'access');
}

async function fund(producer: Producer, config: Config, issued: Map<string, Issued>): Promise<void> {
  const messages = Array.from({ length: settings.users }, (_, i) => {
    const id = `fund-${randomUUID()}`;
    issued.set(id, { id, type: 'deposit', amountMinor: settings.initialMinor, seen: 'unknown', acked: true, sends: 1 });
    return { key: String(i + 1), value: JSON.stringify({ id, type: 'deposit', user_id: i + 1, amount: '1000.00' }) };
  });
  await producer.send({ topic: config.topics.commands, acks: -1, messages });
}

/** One client: random commands, half over HTTP and half straight to Kafka, with retries and duplicates. */
async function client(index: number, deadline: number, token: string, producer: Producer, config: Config, issued: Map<string, Issued>): Promise<void> {
  const random = seededRandom(1_000 + index);
  let order = 0;
  while (Date.now() < deadline) {
    const body = randomCommand(random, index, () => ++order);
    const entry: Issued = { id: body.id, type: body.type, amountMinor: BigInt(Math.round(Number(body.amount ?? '0') * 100)), seen: 'unknown', acked: false, sends: 0 };
    issued.set(body.id, entry);
    if (random() < 0.5) await viaHttp(body, token, entry);
    else await viaKafka(body, producer, config, entry, random() < 0.2);
  }
}

function randomCommand(random: () => number, clientIndex: number, nextOrder: () => number) {
  const user = 1 + Math.floor(random() * settings.users);
  const id = `c${clientIndex}-${randomUUID()}`;
  const amount = (1 + Math.floor(random() * 5_000)) / 100;
  const roll = random();
  const order = { service_id: 1 + (clientIndex % 3), order_id: clientIndex * 1_000_000 + Math.max(1, nextOrder() - (roll < 0.7 ? 1 : 0)) };
  if (roll < 0.35) return { id, type: 'transfer', user_id: user, recipient_id: 1 + ((user + Math.floor(random() * (settings.users - 1))) % settings.users), amount: amount.toFixed(2) };
  if (roll < 0.5) return { id, type: 'deposit', user_id: user, amount: amount.toFixed(2) };
  if (roll < 0.65) return { id, type: 'withdraw', user_id: user, amount: amount.toFixed(2) };
  if (roll < 0.8) return { id, type: 'reserve', user_id: user, ...order, amount: amount.toFixed(2) };
  if (roll < 0.9) return { id, type: 'capture', user_id: user, ...order, amount: (amount / 2).toFixed(2) };
  return { id, type: 'release', user_id: user, ...order };
}

const HTTP_PATHS: Record<string, string> = { deposit: 'add_funds', withdraw: 'withdraw_funds', reserve: 'reserve_funds', capture: 'deduct_funds', release: 'cancel_reservation', transfer: 'transfer_funds' };

async function viaHttp(command: Record<string, unknown> & { id: string; type: string }, token: string, entry: Issued): Promise<void> {
  const { id, type, ...rest } = command;
  const body = type === 'transfer' ? { sender_id: rest.user_id, recipient_id: rest.recipient_id, amount: rest.amount } : rest;
  for (let attempt = 0; attempt <= settings.retriesMax; attempt += 1) {
    entry.sends += 1;
    try {
      const response = await fetch(`http://127.0.0.1:${GATEWAY_PORT}/api/${HTTP_PATHS[type]}/`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': id },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(10_000),
      });
      if (response.status === 201 || response.status === 200) return void Object.assign(entry, { seen: 'applied', acked: true });
      if (response.status === 409) return void Object.assign(entry, { seen: 'rejected', acked: true });
      if (response.status === 202) entry.acked = true;
    } catch {
      // The gateway is down or restarting: retry with the same key.
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

async function viaKafka(command: Record<string, unknown> & { id: string; user_id?: unknown }, producer: Producer, config: Config, entry: Issued, duplicate: boolean): Promise<void> {
  const message = { key: String(command.user_id), value: JSON.stringify(command) };
  for (let copy = 0; copy < (duplicate ? 2 : 1); copy += 1) {
    entry.sends += 1;
    try {
      await producer.send({ topic: config.topics.commands, acks: -1, messages: [message] });
      entry.acked = true;
    } catch {
      // Not acknowledged: the command may or may not be in the log.
    }
  }
}

interface FaultTargets {
  faults: Record<string, number>;
  db: TestDatabase;
  broker: () => LocalKafka;
  consumer: () => ServiceProcess;
  gateway: () => ServiceProcess;
  startConsumer: () => void;
  startGateway: () => void;
}

/** Injects one fault at a time, in rotation, until the deadline; each is healed before the next. */
async function injectFaults(deadline: number, t: FaultTargets): Promise<void> {
  const kinds = ['consumer_sigkill', 'pg_terminate', 'consumer_sigkill', 'gateway_sigkill', 'broker_restart'] as const;
  for (let i = 0; Date.now() + settings.faultEveryMs < deadline; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, settings.faultEveryMs));
    const kind = kinds[i % kinds.length]!;
    t.faults[kind]! += 1;
    if (kind === 'consumer_sigkill') {
      await t.consumer().kill('SIGKILL');
      t.startConsumer();
    } else if (kind === 'gateway_sigkill') {
      await t.gateway().kill('SIGKILL');
      t.startGateway();
    } else if (kind === 'pg_terminate') {
      await t.db.pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ('balance-consumer', 'balance-gateway') AND datname = current_database()");
    } else {
      await restartBroker(t.broker());
    }
  }
}

async function restartBroker(broker: LocalKafka): Promise<void> {
  await broker.stop();
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const restarted = await startLocalKafka({ ...BROKER, heapMb: 512, readyWaitMs: 120_000, fresh: false, log: testLog });
  Object.assign(broker, restarted);
}

async function decided(db: TestDatabase, ids: string[]): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM commands WHERE id = ANY($1::text[])', [ids]);
  return rows[0]!.n;
}

async function check(db: TestDatabase, issued: Map<string, Issued>, faults: Record<string, number>, started: number) {
  const { rows } = await db.pool.query<{ id: string; status: string; postings: number }>(
    "SELECT c.id, c.status, (SELECT count(*)::int FROM postings p WHERE p.command_id = c.id) AS postings FROM commands c WHERE c.type <> 'settle'",
  );
  const stored = new Map(rows.map((r) => [r.id, r]));
  let lost = 0;
  let seenAppliedButNotApplied = 0;
  let seenRejectedButNotRejected = 0;
  let doubleApplied = 0;
  let expectedMoney = 0n;
  for (const command of issued.values()) {
    const row = stored.get(command.id);
    if (command.acked && !row) lost += 1;
    if (command.seen === 'applied' && row?.status !== 'applied') seenAppliedButNotApplied += 1;
    if (command.seen === 'rejected' && row?.status !== 'rejected') seenRejectedButNotRejected += 1;
    if (row && row.postings > (command.type === 'capture' ? 2 : 1)) doubleApplied += 1;
    if (row?.status === 'applied' && command.type === 'deposit') expectedMoney += command.amountMinor;
    if (row?.status === 'applied' && command.type === 'withdraw') expectedMoney -= command.amountMinor;
  }
  const external = BigInt((await db.pool.query<{ balance: string }>("SELECT balance FROM accounts WHERE kind = 'external'")).rows[0]!.balance);
  const inside = BigInt((await db.pool.query<{ sum: string }>("SELECT coalesce(sum(balance), 0) AS sum FROM accounts WHERE kind <> 'external'")).rows[0]!.sum);
  const all = [...issued.values()];
  return {
    commandsIssued: all.length,
    sends: all.reduce((n, c) => n + c.sends, 0),
    faultsInjected: faults,
    applied: rows.filter((r) => r.status === 'applied').length,
    rejected: rows.filter((r) => r.status === 'rejected').length,
    duplicatesAbsorbed: all.reduce((n, c) => n + Math.max(0, c.sends - 1), 0),
    neverAcknowledged: all.filter((c) => !c.acked).length,
    lost,
    doubleApplied,
    seenAppliedButNotApplied,
    seenRejectedButNotRejected,
    conservedToTheKopeck: inside === expectedMoney && inside === -external,
    transfersWithoutExactlyOneSettle: (await settlesPerTransfer(db.pool)).unmatched,
    verifyViolations: (await verifyLedger(db.pool)).map((v) => v.check),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}
