/**
 * The bank test with faults (Jepsen's bank workload, on this service). Concurrent clients move
 * money over HTTP and straight through Kafka, read balances, and deliberately send some
 * commands twice, while the consumer and the gateway are SIGKILLed, the broker is stopped and
 * started, and PostgreSQL connections are terminated. Every client records what it invoked and
 * what it saw; after a bounded drain, the checker (checker.ts) judges the final state by that
 * history alone: nothing acknowledged lost, nothing applied twice, no phantom effects, every
 * outcome a client saw is the stored one, every balance equals the model's, money conserved.
 *
 * Then the checker is shown to catch what `npm run verify` cannot: each planted fault of
 * sabotage.ts is applied inside a transaction that is rolled back, and the checker must name it
 * while verify stays silent. FAULTS_SABOTAGE=<kind> applies one for real before the check, so
 * the run fails (the proof that the test itself can fail).
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
import { inTransaction } from '../../src/db/pool.ts';
import { httpScopedId } from '../../src/commands/schema.ts';
import { PRODUCER_OPTIONS, type Kafka, type Producer } from '../../src/kafka/client.ts';
import { CHAIN_CHECKS, verifyInTransaction, verifyLedger } from '../../src/ledger/verify.ts';
import { startLocalKafka, type LocalKafka } from '../../src/stack/local-kafka.ts';
import { insertUser } from '../../src/users/store.ts';
import { seededRandom } from '../../bench/workloads.ts';
import { settlesPerTransfer, unsettledMinor } from '../helpers/commands.ts';
import { envFor, spawnService, type ServiceProcess } from '../helpers/processes.ts';
import {
  createTestDatabase,
  createTestTopics,
  testConfig,
  testKafka,
  testLog,
  type TestDatabase,
} from '../helpers/stack.ts';
import {
  checkHistory,
  type BalanceRead,
  type CheckReport,
  type Copy,
  type Operation,
  type OperationType,
} from './checker.ts';
import { readFinalState, sabotage, SABOTAGE_KINDS, type Sabotage, type SabotageKind } from './sabotage.ts';

const settings = {
  users: Number(process.env.FAULTS_USERS ?? 20),
  clients: Number(process.env.FAULTS_CLIENTS ?? 8),
  seconds: Number(process.env.FAULTS_SECONDS ?? 40),
  faultEveryMs: Number(process.env.FAULTS_EVERY_MS ?? 4_000),
  /** The longest wait for the service to catch up after the load; what is missing then is lost. */
  drainSeconds: Number(process.env.FAULTS_DRAIN_S ?? 60),
  sabotage: (process.env.FAULTS_SABOTAGE || null) as SabotageKind | null,
  retriesMax: 3,
  pollWaitMs: 8_000,
  initialMinor: 100_000n,
};
const GATEWAY_PORT = 39_380;
const BROKER = { dir: '.local/kafka-faults', port: 39_292, controllerPort: 39_293 };

/** An operation being recorded: the checker's Operation, filled in as the client learns more. */
type Recording = { -readonly [K in keyof Operation]: Operation[K] } & { copies: Copy[] };

interface Recorder {
  readonly operations: Map<string, Recording>;
  readonly reads: BalanceRead[];
}

describe('the bank test with injected faults', () => {
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  let broker: LocalKafka;
  let consumer: ServiceProcess;
  let gateway: ServiceProcess;
  const recorder: Recorder = { operations: new Map(), reads: [] };
  const faults: Record<string, number> = {
    consumer_sigkill: 0,
    consumer_rebalance: 0,
    gateway_sigkill: 0,
    broker_restart: 0,
    pg_terminate: 0,
  };

  beforeAll(async () => {
    if (settings.sabotage && !SABOTAGE_KINDS.includes(settings.sabotage))
      throw new Error(`FAULTS_SABOTAGE must be one of ${SABOTAGE_KINDS.join(', ')}`);
    broker = await startLocalKafka({ ...BROKER, heapMb: 512, readyWaitMs: 120_000, fresh: true, log: testLog });
    db = await createTestDatabase();
    config = testConfig(db, {
      kafka: { brokers: broker.brokers },
      http: { port: GATEWAY_PORT },
      limits: { replyWaitMs: 5_000 },
    });
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

  it(
    "keeps every promise while processes, the broker and connections fail, judged by the clients' history",
    async () => {
      const started = Date.now();
      startConsumer();
      startGateway();
      const { token, userId: serviceId } = await serviceToken(db, config);
      httpCaller = serviceId;
      // The service's producer settings: an idempotent kafkajs producer can drop a message it
      // acknowledges after a failed send (see PRODUCER_OPTIONS); it lost one in a run.
      const producer = kafka.producer({ ...PRODUCER_OPTIONS, allowAutoTopicCreation: true, retry: { retries: 2 } });
      await producer.connect();
      await fund(producer, config, recorder);
      await waitUntilDecided(db, [...recorder.operations.keys()], 120_000);

      const deadline = Date.now() + settings.seconds * 1_000;
      const load = Array.from({ length: settings.clients }, (_, i) =>
        client(i, deadline, token, producer, config, recorder),
      );
      const chaos = injectFaults(deadline, {
        faults,
        db,
        broker: () => broker,
        consumer: () => consumer,
        gateway: () => gateway,
        startConsumer,
        startGateway,
        joinConsumer: () => spawnService('src/consumer/main.ts', env()),
        replaceConsumer: (next) => {
          consumer = next;
        },
      });
      await Promise.all([...load, chaos]);
      await producer.disconnect();

      // Make sure the service is whole again, then let it catch up, for a bounded time only.
      if (consumer.child.exitCode !== null || consumer.child.signalCode !== null) startConsumer();
      const drained = await drain(db, recorder);
      const planted = settings.sabotage
        ? await inTransaction(db.pool, (client) => sabotage(client, settings.sabotage!, acknowledgedDeposits(recorder)))
        : null;

      const history = { operations: [...recorder.operations.values()], reads: recorder.reads };
      const checked = checkHistory(history, await readFinalState(db.pool));
      // With a fault planted for real, the run itself is the proof; otherwise plant each one and roll it back.
      const proofs = planted ? [] : await proveTheChecker(db, history);
      const report = await summarize(db, { checked, drained, faults, started, planted, history, proofs });
      console.log(`bank test with faults: ${JSON.stringify(report, jsonBigInt, 2)}`);
      await mkdir('bench/results', { recursive: true });
      await writeFile(
        `bench/results/faults-${new Date().toISOString().replaceAll(':', '-')}.json`,
        JSON.stringify(report, jsonBigInt, 2),
      );

      expect(checked.lost, 'lost').toEqual([]);
      expect(checked.doubleApplied, 'applied twice').toEqual([]);
      expect(checked.phantom, 'phantom effects').toEqual([]);
      expect(checked.outcomeMismatch, 'outcomes differing from what a client saw').toEqual([]);
      expect(checked.balanceMismatch, 'balances differing from the model').toEqual([]);
      expect(checked.negative, 'negative balances').toEqual([]);
      expect(checked.droppedFirstCopies, 'first copies dropped').toEqual([]);
      expect(checked.conservation.holds, 'money conserved').toBe(true);
      expect(checked.unsettledLegs, 'transfer legs whose credit never arrived').toEqual([]);
      expect(report.transferLegsWithoutTheirSettle).toBe(0);
      expect(report.splitLegsSettled).toBeGreaterThan(0);
      expect(report.verifyViolations).toEqual([]);
      const chainChecks = new Set<string>(CHAIN_CHECKS.map((c) => c.name));
      for (const proof of proofs) {
        expect(proof, `the checker catches ${proof.kind}`).toMatchObject({ caughtByChecker: true });
        // The sums still hold after each sabotage; only the history chain can see it.
        expect(
          proof.verifyViolations.filter((check) => !chainChecks.has(check)),
          `verify's other checks after ${proof.kind}`,
        ).toEqual([]);
      }
      // A deposit erased with its rows leaves its user's chain broken.
      expect(proofs.find((p) => p.kind === 'erase-one')?.verifyViolations).toContain('history_chain');
      expect(Object.values(faults).every((n) => n > 0)).toBe(true);
    },
    (settings.seconds + settings.drainSeconds + 300) * 1_000,
  );
});

function jsonBigInt(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

/** The service account the HTTP clients act as; the ids it sends are scoped to it. */
let httpCaller = 0;

async function serviceToken(db: TestDatabase, config: Config): Promise<{ token: string; userId: number }> {
  const id = await insertUser(db.pool, `faults-${randomUUID()}`, 'scrypt$1$1$1$x$x', 'service');
  return {
    token: await new TokenService(config.jwt).issueAccess({ userId: id, role: 'service', version: 0 }),
    userId: id,
  };
}

/** The starting money: one deposit per user, straight to Kafka, recorded like any other operation. */
async function fund(producer: Producer, config: Config, recorder: Recorder): Promise<void> {
  for (let user = 1; user <= settings.users; user += 1) {
    const command = { id: `fund-${randomUUID()}`, type: 'deposit' as const, user_id: user, amount: '1000.00' };
    await viaKafka(command, producer, config, record(recorder, command), false);
  }
}

function record(recorder: Recorder, command: WireCommand, recordedId = command.id): Recording {
  const op: Recording = {
    id: recordedId,
    type: command.type,
    userId: command.user_id,
    ...(command.recipient_id === undefined ? {} : { recipientId: command.recipient_id }),
    ...(command.recipients === undefined
      ? {}
      : {
          legs: command.recipients.map((leg) => ({
            recipientId: leg.recipient_id,
            amountMinor: BigInt(leg.amount.replace('.', '')),
          })),
        }),
    ...(command.service_id === undefined ? {} : { serviceId: command.service_id, orderId: command.order_id }),
    amountMinor: command.amount === undefined ? 0n : BigInt(command.amount.replace('.', '')),
    completion: { type: 'info' },
    copies: [],
  };
  recorder.operations.set(op.id, op);
  return op;
}

interface WireCommand {
  id: string;
  type: OperationType;
  user_id: number;
  recipient_id?: number;
  /** A split payment's legs, instead of recipient_id and amount. */
  recipients?: Array<{ recipient_id: number; amount: string }>;
  service_id?: number;
  order_id?: number;
  amount?: string;
}

/** One client: random commands, half over HTTP and half straight to Kafka, some sent twice, and reads. */
async function client(
  index: number,
  deadline: number,
  token: string,
  producer: Producer,
  config: Config,
  recorder: Recorder,
): Promise<void> {
  const random = seededRandom(1_000 + index);
  let order = 0;
  while (Date.now() < deadline) {
    if (random() < 0.1) {
      await readBalance(1 + Math.floor(random() * settings.users), token, recorder);
      continue;
    }
    const command = randomCommand(random, index, () => ++order);
    // Over HTTP the id is the caller's key; the service records it scoped to the caller.
    const overHttp = random() < 0.5;
    const op = record(recorder, command, overHttp ? httpScopedId(httpCaller, command.id) : command.id);
    if (overHttp) await viaHttp(command, token, op);
    else await viaKafka(command, producer, config, op, random() < 0.2);
  }
}

function randomCommand(random: () => number, clientIndex: number, nextOrder: () => number): WireCommand {
  const user = 1 + Math.floor(random() * settings.users);
  const id = `c${clientIndex}-${randomUUID()}`;
  const amount = ((1 + Math.floor(random() * 5_000)) / 100).toFixed(2);
  const roll = random();
  const order = {
    service_id: 1 + (clientIndex % 3),
    order_id: clientIndex * 1_000_000 + Math.max(1, nextOrder() - (roll < 0.7 ? 1 : 0)),
  };
  // A third of the transfers are split payments to two or three distinct others.
  if (roll < 0.12) return splitPayment(random, id, user);
  if (roll < 0.35)
    return {
      id,
      type: 'transfer',
      user_id: user,
      recipient_id: 1 + ((user + Math.floor(random() * (settings.users - 1))) % settings.users),
      amount,
    };
  if (roll < 0.5) return { id, type: 'deposit', user_id: user, amount };
  if (roll < 0.65) return { id, type: 'withdraw', user_id: user, amount };
  if (roll < 0.8) return { id, type: 'reserve', user_id: user, ...order, amount };
  if (roll < 0.9) return { id, type: 'capture', user_id: user, ...order, amount: (Number(amount) / 2).toFixed(2) };
  return { id, type: 'release', user_id: user, ...order };
}

function splitPayment(random: () => number, id: string, user: number): WireCommand {
  const others = Array.from({ length: settings.users - 1 }, (_, i) => 1 + ((user + i) % settings.users));
  const legs = 2 + Math.floor(random() * 2);
  const recipients = [];
  for (let i = 0; i < legs; i += 1) {
    const [recipient] = others.splice(Math.floor(random() * others.length), 1);
    recipients.push({ recipient_id: recipient!, amount: ((1 + Math.floor(random() * 2_000)) / 100).toFixed(2) });
  }
  return { id, type: 'transfer', user_id: user, recipients };
}

const HTTP_PATHS: Record<OperationType, string> = {
  deposit: 'add_funds',
  withdraw: 'withdraw_funds',
  reserve: 'reserve_funds',
  capture: 'deduct_funds',
  release: 'cancel_reservation',
  transfer: 'transfer_funds',
};

/**
 * Sends over HTTP with the operation's id as Idempotency-Key. A send that was not acknowledged
 * (an error, a 5xx) is sent again; one that was (202) is never sent again but polled, so a
 * retry can never hide a copy the service dropped.
 */
async function viaHttp(command: WireCommand, token: string, op: Recording): Promise<void> {
  const { id, type, ...rest } = command;
  const body =
    type !== 'transfer'
      ? rest
      : rest.recipients
        ? { sender_id: rest.user_id, recipients: rest.recipients }
        : { sender_id: rest.user_id, recipient_id: rest.recipient_id, amount: rest.amount };
  for (let attempt = 0; attempt <= settings.retriesMax; attempt += 1) {
    const response = await fetch(`http://127.0.0.1:${GATEWAY_PORT}/api/${HTTP_PATHS[type]}/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', 'idempotency-key': id },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    }).catch(() => null);
    const status = response?.status ?? 0;
    const answer =
      status === 201 || status === 200 || status === 409 ? ((await response!.json()) as { duplicate?: boolean }) : null;
    op.copies.push({
      via: 'http',
      acked: status === 201 || status === 200 || status === 202 || status === 409,
      answeredDuplicate: answer?.duplicate === true,
    });
    if (status === 201 || status === 200) return void (op.completion = { type: 'ok', outcome: 'applied' });
    if (status === 409) return void (op.completion = { type: 'ok', outcome: 'rejected' });
    if (status === 202) return poll(id, token, op);
    // Any other 4xx is a definite refusal: nothing was sent.
    if (status >= 400 && status < 500) return void (op.completion = { type: 'fail' });
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

/** After a 202: the command is in Kafka; ask for its outcome until it is decided, for a bounded time. */
async function poll(id: string, token: string, op: Recording): Promise<void> {
  op.completion = { type: 'ok', outcome: 'published' };
  const deadline = Date.now() + settings.pollWaitMs;
  while (Date.now() < deadline) {
    const response = await fetch(`http://127.0.0.1:${GATEWAY_PORT}/api/commands/${encodeURIComponent(id)}`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(5_000),
    }).catch(() => null);
    const body = response?.status === 200 ? ((await response.json()) as { status?: string }) : null;
    if (body?.status === 'applied' || body?.status === 'rejected')
      return void (op.completion = { type: 'ok', outcome: body.status });
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Sends straight to Kafka, recording where each copy landed; `duplicate` sends a second copy after the first was acknowledged. */
async function viaKafka(
  command: WireCommand,
  producer: Producer,
  config: Config,
  op: Recording,
  duplicate: boolean,
): Promise<void> {
  const message = { key: String(command.user_id), value: JSON.stringify(command) };
  for (let copy = 0; copy < (duplicate ? 2 : 1); copy += 1) {
    try {
      const [placed] = await producer.send({ topic: config.topics.commands, acks: -1, messages: [message] });
      op.copies.push({
        via: 'kafka',
        acked: true,
        at: { partition: placed!.partition, offset: String(placed!.baseOffset) },
      });
      op.completion = { type: 'ok', outcome: 'published' };
    } catch {
      // Not acknowledged: this copy may or may not be in the log.
      op.copies.push({ via: 'kafka', acked: false });
      return;
    }
  }
}

async function readBalance(userId: number, token: string, recorder: Recorder): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${GATEWAY_PORT}/api/balances/?user_id=${userId}`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(5_000),
  }).catch(() => null);
  if (response?.status !== 200) return;
  const body = (await response.json()) as { amount: string; reserved: string; incoming: string };
  const minor = (text: string) => BigInt(text.replace('.', ''));
  recorder.reads.push({
    userId,
    availableMinor: minor(body.amount),
    reservedMinor: minor(body.reserved),
    incomingMinor: minor(body.incoming),
  });
}

interface FaultTargets {
  faults: Record<string, number>;
  db: TestDatabase;
  broker: () => LocalKafka;
  consumer: () => ServiceProcess;
  gateway: () => ServiceProcess;
  startConsumer: () => void;
  startGateway: () => void;
  /** Starts another consumer in the group, keeping the current one: partitions move under load. */
  joinConsumer: () => ServiceProcess;
  replaceConsumer: (next: ServiceProcess) => void;
}

/** Injects one fault at a time, in rotation, until the deadline; each is healed before the next. */
async function injectFaults(deadline: number, t: FaultTargets): Promise<void> {
  const kinds = [
    'consumer_sigkill',
    'pg_terminate',
    'consumer_rebalance',
    'gateway_sigkill',
    'broker_restart',
  ] as const;
  for (let i = 0; Date.now() + settings.faultEveryMs < deadline; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, settings.faultEveryMs));
    const kind = kinds[i % kinds.length]!;
    t.faults[kind]! += 1;
    if (kind === 'consumer_sigkill') {
      await t.consumer().kill('SIGKILL');
      t.startConsumer();
    } else if (kind === 'consumer_rebalance') {
      // A second consumer joins: the group moves partitions while chunks are in flight (the old
      // owner's writes are refused by epoch); then the first is killed outright, mid-chunk, and
      // its partitions move again.
      const joined = t.joinConsumer();
      await new Promise((resolve) => setTimeout(resolve, settings.faultEveryMs / 2));
      await t.consumer().kill('SIGKILL');
      t.replaceConsumer(joined);
    } else if (kind === 'gateway_sigkill') {
      await t.gateway().kill('SIGKILL');
      t.startGateway();
    } else if (kind === 'pg_terminate') {
      await t.db.pool.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name IN ('balance-consumer', 'balance-gateway') AND datname = current_database()",
      );
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

/**
 * Waits, at most FAULTS_DRAIN_S, until every acknowledged command is decided and every transfer
 * settled. It never fails: whatever is still missing then is the checker's to call lost.
 */
async function drain(db: TestDatabase, recorder: Recorder): Promise<{ seconds: number; complete: boolean }> {
  const started = Date.now();
  const acked = [...recorder.operations.values()]
    .filter((op) => op.completion.type === 'ok' || op.copies.some((c) => c.acked))
    .map((op) => op.id);
  const deadline = started + settings.drainSeconds * 1_000;
  let complete = false;
  while (Date.now() < deadline && !complete) {
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM commands WHERE id = ANY($1::text[])',
      [acked],
    );
    complete = rows[0]!.n === acked.length && (await unsettledMinor(db.pool)) === 0n;
    if (!complete) await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { seconds: Math.round((Date.now() - started) / 100) / 10, complete };
}

/** Waits for the starting deposits, so the load does not begin on empty accounts. */
async function waitUntilDecided(db: TestDatabase, ids: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM commands WHERE id = ANY($1::text[])',
      [ids],
    );
    if (rows[0]!.n === ids.length) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

function acknowledgedDeposits(recorder: Recorder): string[] {
  return [...recorder.operations.values()]
    .filter((op) => op.type === 'deposit' && (op.completion.type === 'ok' || op.copies.some((c) => c.acked)))
    .map((op) => op.id);
}

/**
 * Each planted fault, inside a transaction that is rolled back: the checker must name what was
 * tampered with, and verify must see nothing (or the fault would prove nothing about the checker).
 */
async function proveTheChecker(db: TestDatabase, history: { operations: Operation[]; reads: BalanceRead[] }) {
  const proofs = [];
  for (const kind of SABOTAGE_KINDS) {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const planted: Sabotage = await sabotage(
        client,
        kind,
        acknowledgedDeposits({
          operations: new Map(history.operations.map((op) => [op.id, op as Recording])),
          reads: [],
        }),
      );
      const report = checkHistory(history, await readFinalState(client));
      const named = [
        ...report.lost,
        ...report.phantom,
        ...report.balanceMismatch.map((m) => m.id),
        ...report.unsettledLegs,
      ];
      const verifyViolations = (await verifyInTransaction(client)).map((v) => v.check);
      proofs.push({
        kind,
        planted: planted.names,
        named,
        caughtByChecker: !report.valid && planted.names.every((name) => named.includes(name)),
        verifyViolations,
      });
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  }
  return proofs;
}

async function summarize(
  db: TestDatabase,
  run: {
    checked: CheckReport;
    drained: { seconds: number; complete: boolean };
    faults: Record<string, number>;
    started: number;
    planted: Sabotage | null;
    history: { operations: Operation[]; reads: BalanceRead[] };
    proofs: unknown[];
  },
) {
  const ops = run.history.operations;
  const { checked } = run;
  return {
    settings: { ...settings, initialMinor: String(settings.initialMinor) },
    machine: { cpus: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30) },
    sabotage: run.planted,
    faultsInjected: run.faults,
    history: {
      operations: ops.length,
      info: checked.infos,
      reads: run.history.reads.length,
      sends: ops.reduce((n, op) => n + op.copies.length, 0),
      deliberateDuplicates: ops.filter((op) => op.copies.filter((c) => c.via === 'kafka' && c.acked).length > 1).length,
      seenApplied: ops.filter((op) => op.completion.type === 'ok' && op.completion.outcome === 'applied').length,
      seenRejected: ops.filter((op) => op.completion.type === 'ok' && op.completion.outcome === 'rejected').length,
      publishedOutcomeUnseen: ops.filter((op) => op.completion.type === 'ok' && op.completion.outcome === 'published')
        .length,
    },
    drain: run.drained,
    checker: {
      valid: checked.valid,
      lost: checked.lost.length,
      doubleApplied: checked.doubleApplied.length,
      phantom: checked.phantom.length,
      outcomeMismatch: checked.outcomeMismatch.length,
      balanceMismatch: checked.balanceMismatch.length,
      negative: checked.negative.length,
      droppedFirstCopies: checked.droppedFirstCopies.length,
      conservation: checked.conservation,
      found: {
        lost: checked.lost,
        doubleApplied: checked.doubleApplied,
        phantom: checked.phantom,
        outcomeMismatch: checked.outcomeMismatch,
        balanceMismatch: checked.balanceMismatch,
        negative: checked.negative,
        droppedFirstCopies: checked.droppedFirstCopies,
        unsettledLegs: checked.unsettledLegs,
      },
    },
    plantedFaultsCaught: run.proofs,
    transferLegsWithoutTheirSettle: (await settlesPerTransfer(db.pool)).unmatched,
    // Split payments took part: their legs' settles carry `#<recipient>`.
    splitLegsSettled: (
      await db.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM commands WHERE type = 'settle' AND status = 'applied' AND strpos(id, '#') > 0",
      )
    ).rows[0]!.n,
    verifyViolations: (await verifyLedger(db.pool)).map((v) => v.check),
    seconds: Math.round((Date.now() - run.started) / 100) / 10,
  };
}
