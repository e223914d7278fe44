import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { createCommandWorker, type CommandWorker } from '../../src/consumer/worker.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { replySchema } from '../../src/commands/reply-schema.ts';
import { commandFingerprint, createCommandSchema } from '../../src/commands/schema.ts';
import { applyWithRetry } from '../../src/consumer/apply.ts';
import { PrincipalAttestation } from '../../src/commands/principal-proof.ts';
import {
  balancesOf,
  waitForSettles,
  collectReplies,
  publish,
  type ReplyCollector,
  type WireCommand,
} from '../helpers/commands.ts';
import {
  counterAfter,
  createTestDatabase,
  createTestTopics,
  eventually,
  testConfig,
  testKafka,
  testLog,
  uniqueSuffix,
  type TestDatabase,
} from '../helpers/stack.ts';

describe('the command consumer, against the real broker and database', () => {
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  let worker: CommandWorker;
  let replies: ReplyCollector;
  let run = '';
  const id = (name: string) => `${run}-${name}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db);
    kafka = testKafka(config);
    await createTestTopics(kafka, config);
    worker = createCommandWorker({ config, kafka, pool: db.pool, log: testLog });
    await worker.start();
    replies = await collectReplies(kafka, config.topics.replies);
  });
  afterAll(async () => {
    await replies?.stop();
    await worker?.stop();
    await db?.drop();
  });

  async function send(commands: WireCommand[]) {
    run ||= uniqueSuffix();
    await publish(kafka, config.topics.commands, commands);
    return replies.waitFor(commands.map((c) => c.id));
  }

  it('applies every command type and answers each rejection with its code', async () => {
    run = uniqueSuffix();
    const u = 100;
    const result = await send([
      { id: id('dep'), type: 'deposit', user_id: u, amount: '100.00', comment: 'salary' },
      { id: id('wd'), type: 'withdraw', user_id: u, amount: '10.00' },
      { id: id('wd-big'), type: 'withdraw', user_id: u, amount: '1000.00' },
      { id: id('res'), type: 'reserve', user_id: u, service_id: 7, order_id: 70, amount: '30.00' },
      { id: id('res-again'), type: 'reserve', user_id: u, service_id: 7, order_id: 70, amount: '1.00' },
      { id: id('res-big'), type: 'reserve', user_id: u, service_id: 7, order_id: 71, amount: '500.00' },
      { id: id('cap-big'), type: 'capture', user_id: u, service_id: 7, order_id: 70, amount: '30.01' },
      { id: id('cap'), type: 'capture', user_id: u, service_id: 7, order_id: 70, amount: '25.00' },
      { id: id('cap-none'), type: 'capture', user_id: u, service_id: 7, order_id: 999, amount: '1.00' },
      { id: id('res2'), type: 'reserve', user_id: u, service_id: 7, order_id: 72, amount: '5.00' },
      { id: id('rel'), type: 'release', user_id: u, service_id: 7, order_id: 72 },
      { id: id('rel-none'), type: 'release', user_id: u, service_id: 7, order_id: 72 },
      { id: id('tr'), type: 'transfer', user_id: u, recipient_id: 101, amount: '20.00' },
      { id: id('tr-self'), type: 'transfer', user_id: u, recipient_id: u, amount: '1.00' },
      { id: id('tr-big'), type: 'transfer', user_id: u, recipient_id: 101, amount: '999.00' },
    ]);
    const codes = Object.fromEntries([...result].map(([key, reply]) => [key.slice(run.length + 1), reply.code]));
    expect(codes).toEqual({
      dep: 'ok',
      wd: 'ok',
      'wd-big': 'insufficient_funds',
      res: 'ok',
      'res-again': 'reservation_exists',
      'res-big': 'insufficient_funds',
      'cap-big': 'amount_exceeds_reservation',
      cap: 'ok',
      'cap-none': 'reservation_not_found',
      res2: 'ok',
      rel: 'ok',
      'rel-none': 'reservation_not_found',
      tr: 'ok',
      'tr-self': 'same_account',
      'tr-big': 'insufficient_funds',
    });
    // 100 - 10 - 30 + 5 (capture remainder) - 5 + 5 (release) - 20 = 45
    await waitForSettles(db.pool);
    expect(await balancesOf(db.pool, u)).toEqual({ available: 4500n, reserved: 0n, incoming: 0n });
    expect(await balancesOf(db.pool, 101)).toEqual({ available: 2000n, reserved: 0n, incoming: 0n });
    const transfer = result.get(id('tr'))!;
    // The sender's balances, and the recipient's as the transfer left them: the credit in incoming.
    expect(transfer.balances).toEqual({
      '100': { available: '45.00', reserved: '0.00' },
      '101': { available: '0.00', reserved: '0.00', incoming: '20.00' },
    });
    const settle = await db.pool.query("SELECT type, user_id, status FROM commands WHERE id = '~settle:' || $1", [
      id('tr'),
    ]);
    expect(settle.rows).toEqual([{ type: 'settle', user_id: '101', status: 'applied' }]);
    expect(transfer.transactions.map((t) => [t.user_id, t.amount, t.transaction_type, t.counterparty_id])).toEqual([
      [100, '-20.00', 'transfer_out', 101],
      [101, '20.00', 'transfer_in', 100],
    ]);
    const capture = result.get(id('cap'))!;
    expect(capture.transactions.map((t) => [t.amount, t.transaction_type, t.service_id, t.order_id])).toEqual([
      ['-25.00', 'capture', 7, 70],
      ['5.00', 'release', 7, 70],
    ]);
    expect(result.get(id('dep'))!.transactions[0]).toMatchObject({
      comment: 'salary',
      command_id: id('dep'),
      amount: '100.00',
    });
    const revenue = await db.pool.query(
      'SELECT service_id, order_id, user_id, amount FROM revenue_entries WHERE command_id = $1',
      [id('cap')],
    );
    expect(revenue.rows).toEqual([{ service_id: '7', order_id: '70', user_id: '100', amount: '2500' }]);
    for (const reply of result.values()) expect(replySchema.safeParse(reply).error).toBeUndefined();
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('applies a command published to the wrong partition, and counts it as misrouted', async () => {
    run = uniqueSuffix();
    const { partitionOfKey } = await import('../../src/kafka/partition.ts');
    const user = 500;
    const wrong = (partitionOfKey(String(user), config.topics.commandPartitions) + 1) % config.topics.commandPartitions;
    const before = worker.stats.misrouted;
    const command = { id: id('misrouted'), type: 'deposit', user_id: user, amount: '1.00' };
    await publish(kafka, config.topics.commands, [
      { raw: JSON.stringify(command), key: String(user), partition: wrong },
    ]);
    const result = await replies.waitFor([id('misrouted')]);
    expect(result.get(id('misrouted'))).toMatchObject({ status: 'applied' });
    expect(await counterAfter(() => worker.stats.misrouted, before)).toBe(before + 1);
  });

  it('answers a repeated command from its stored outcome, without applying it again', async () => {
    run = uniqueSuffix();
    const deposit: WireCommand = { id: id('once'), type: 'deposit', user_id: 200, amount: '5.00' };
    const first = (await send([deposit])).get(id('once'))!;
    await publish(kafka, config.topics.commands, [deposit, { ...deposit, amount: 5 }]);
    await eventually(async () => ((replies.replies.get(id('once'))?.length ?? 0) >= 3 ? true : undefined));
    const [, second, third] = replies.replies.get(id('once'))!;
    expect(first).toMatchObject({ status: 'applied', duplicate: false });
    expect(second).toMatchObject({ status: 'applied', code: 'ok', duplicate: true, transactions: first.transactions });
    expect(third).toMatchObject({ duplicate: true });
    expect(await balancesOf(db.pool, 200)).toEqual({ available: 500n, reserved: 0n, incoming: 0n });
  });

  it('rejects an id reused for a different command and leaves the original alone', async () => {
    run = uniqueSuffix();
    await send([{ id: id('key'), type: 'deposit', user_id: 201, amount: '5.00' }]);
    await publish(kafka, config.topics.commands, [{ id: id('key'), type: 'deposit', user_id: 201, amount: '6.00' }]);
    await eventually(async () => ((replies.replies.get(id('key'))?.length ?? 0) >= 2 ? true : undefined));
    expect(replies.replies.get(id('key'))![1]).toMatchObject({
      status: 'rejected',
      code: 'idempotency_key_reused',
      duplicate: false,
    });
    expect(await balancesOf(db.pool, 201)).toEqual({ available: 500n, reserved: 0n, incoming: 0n });
    const stored = await db.pool.query('SELECT status, code FROM commands WHERE id = $1', [id('key')]);
    expect(stored.rows).toEqual([{ status: 'applied', code: 'ok' }]);
  });

  it('dead-letters a malformed message and still applies the commands after it on its partition', async () => {
    run = uniqueSuffix();
    const user = 300;
    await publish(kafka, config.topics.commands, [
      { raw: '{not json', key: String(user) },
      { raw: JSON.stringify({ id: id('bad'), type: 'deposit', user_id: user, amount: '-5' }), key: String(user) },
      { id: id('good'), type: 'deposit', user_id: user, amount: '7.00' },
    ]);
    const result = await replies.waitFor([id('bad'), id('good')]);
    expect(result.get(id('bad'))).toMatchObject({ status: 'rejected', code: 'invalid_command' });
    expect(result.get(id('good'))).toMatchObject({ status: 'applied', code: 'ok' });
    const dead = await readTopic(kafka, config.topics.deadLetters, 2);
    expect(dead.map((m) => m.headers['x-error-code'])).toEqual(['not_json', 'invalid_command']);
    expect(dead[0]!.value).toBe('{not json');
    expect(dead[0]!.key).toBe(String(user));
    expect(dead[1]!.headers).toMatchObject({ 'x-source-topic': config.topics.commands });
    expect(Number(dead[1]!.headers['x-source-offset'])).toBeGreaterThan(Number(dead[0]!.headers['x-source-offset']));
    expect(await balancesOf(db.pool, user)).toEqual({ available: 700n, reserved: 0n, incoming: 0n });
  });

  it('applies opposite concurrent transfers between two partitions without losing money', async () => {
    run = uniqueSuffix();
    const [a, b] = await usersOnDifferentPartitions(config.topics.commandPartitions);
    await send([
      { id: id('fund-a'), type: 'deposit', user_id: a, amount: '1000.00' },
      { id: id('fund-b'), type: 'deposit', user_id: b, amount: '1000.00' },
    ]);
    const transfers: WireCommand[] = [];
    for (let i = 0; i < 200; i += 1) {
      transfers.push({ id: id(`ab-${i}`), type: 'transfer', user_id: a, recipient_id: b, amount: '1.00' });
      transfers.push({ id: id(`ba-${i}`), type: 'transfer', user_id: b, recipient_id: a, amount: '2.00' });
    }
    const result = await send(transfers);
    expect([...result.values()].every((reply) => reply.code === 'ok')).toBe(true);
    await waitForSettles(db.pool);
    const balanceA = await balancesOf(db.pool, a);
    const balanceB = await balancesOf(db.pool, b);
    expect(balanceA.available).toBe(100_000n - 200n * 100n + 200n * 200n);
    expect(balanceA.available + balanceB.available).toBe(200_000n);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('publishes the settle of a transfer it finds already applied, as after a crash between commit and publish', async () => {
    run = uniqueSuffix();
    const schema = createCommandSchema(config.limits);
    const wire: WireCommand[] = [
      { id: id('crashed-fund'), type: 'deposit', user_id: 600, amount: '10.00' },
      { id: id('crashed-transfer'), type: 'transfer', user_id: 600, recipient_id: 601, amount: '4.00' },
    ];
    const items = wire.map((w) => {
      const command = schema.parse(w);
      return { command, fingerprint: commandFingerprint(command), partition: null, offset: null, principal: 'test' };
    });
    // A consumer committed these and died before publishing anything.
    await applyWithRetry(db.pool, items, { consumer: config.consumer, limits: config.limits, log: testLog });
    expect(await balancesOf(db.pool, 601)).toEqual({ available: 0n, reserved: 0n, incoming: 400n });
    const result = await send(wire);
    expect([...result.values()].map((reply) => [reply.status, reply.duplicate])).toEqual([
      ['applied', true],
      ['applied', true],
    ]);
    await waitForSettles(db.pool);
    expect(await balancesOf(db.pool, 601)).toEqual({ available: 400n, reserved: 0n, incoming: 0n });
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it("records who sent each command: an attested principal, a producer's claim, or unauthenticated", async () => {
    run = uniqueSuffix();
    const attestation = new PrincipalAttestation(config.internalCommands);
    const schema = createCommandSchema(config.limits);
    const body = (name: string, amount = '1.00') => ({ id: id(name), type: 'deposit', user_id: 700, amount });
    const attest = (command: ReturnType<typeof body>, principal: string) =>
      attestation.headers({ id: command.id, fingerprint: commandFingerprint(schema.parse(command)) }, principal);
    const attested = attest(body('gw'), 'service:42');
    const deposit = (name: string) => JSON.stringify(body(name));
    await publish(kafka, config.topics.commands, [
      { raw: deposit('gw'), key: '700', headers: attested },
      // The gateway's proof for one body, on another body with the same id: it vouches for nothing.
      { raw: JSON.stringify(body('copied', '500.00')), key: '700', headers: attest(body('copied'), 'service:42') },
      { raw: deposit('billing'), key: '700', headers: { 'x-producer': 'billing' } },
      { raw: deposit('anon'), key: '700' },
      // A claimed principal without a valid proof is not believed.
      {
        raw: deposit('forged'),
        key: '700',
        headers: {
          'x-balance-principal': 'admin:1',
          'x-balance-principal-proof': attested['x-balance-principal-proof']!,
        },
      },
    ]);
    await replies.waitFor([id('gw'), id('copied'), id('billing'), id('anon'), id('forged')]);
    const { rows } = await db.pool.query('SELECT id, principal FROM commands WHERE id = ANY($1) ORDER BY id', [
      [id('gw'), id('copied'), id('billing'), id('anon'), id('forged')],
    ]);
    expect(Object.fromEntries(rows.map((r) => [r.id.slice(run.length + 1), r.principal]))).toEqual({
      gw: 'service:42',
      copied: 'unauthenticated',
      billing: 'producer:billing',
      anon: 'unauthenticated',
      forged: 'unauthenticated',
    });
  });

  it("refuses a producer's ~http: id (a caller's Idempotency-Key) unless the gateway attested it for that caller, and the partition goes on", async () => {
    run = uniqueSuffix();
    const attestation = new PrincipalAttestation(config.internalCommands);
    const schema = createCommandSchema(config.limits);
    const command = (key: string) => ({ id: `~http:42:${run}-${key}`, type: 'deposit', user_id: 701, amount: '1.00' });
    const headersFor = (body: ReturnType<typeof command>, principal: string) =>
      attestation.headers({ id: body.id, fingerprint: commandFingerprint(schema.parse(body)) }, principal);
    const squatted = command('squatted');
    const otherCaller = command('other-caller');
    const own = command('own');
    await publish(kafka, config.topics.commands, [
      { raw: JSON.stringify(squatted), key: '701', headers: { 'x-producer': 'billing' } },
      { raw: JSON.stringify(otherCaller), key: '701', headers: headersFor(otherCaller, 'service:43') },
      { raw: JSON.stringify(own), key: '701', headers: headersFor(own, 'service:42') },
    ]);
    await replies.waitFor([own.id]);
    const canary = { id: id('canary'), type: 'deposit' as const, user_id: 701, amount: '0.01' };
    await publish(kafka, config.topics.commands, [canary]);
    await replies.waitFor([canary.id]);
    const { rows } = await db.pool.query('SELECT id FROM commands WHERE user_id = 701 ORDER BY id');
    expect(rows.map((r) => r.id)).toEqual([canary.id, own.id].sort());
    expect(await balancesOf(db.pool, 701)).toEqual({ available: 101n, reserved: 0n, incoming: 0n });
  });

  it('re-consuming the whole topic with a new group changes nothing', async () => {
    const snapshot = async () => ({
      accounts: (await db.pool.query('SELECT id, balance FROM accounts ORDER BY id')).rows,
      counts: (
        await db.pool.query(
          'SELECT (SELECT count(*)::int FROM commands) AS commands, (SELECT count(*)::int FROM postings) AS postings, (SELECT count(*)::int FROM transactions) AS history, (SELECT max(id) FROM transactions) AS last_history',
        )
      ).rows[0],
    });
    const before = await snapshot();
    const group = `${config.consumer.group}-replay`;
    const replay = createCommandWorker({
      config: { ...config, consumer: { ...config.consumer, group } },
      kafka,
      pool: db.pool,
      log: testLog,
    });
    await replay.start();
    try {
      // Done when the new group has committed the end of every partition, not when a counter says so.
      expect(await behindEnd(kafka, group, config.topics.commands, 60_000), 'messages the replay did not reach').toBe(
        0,
      );
    } finally {
      await replay.stop();
    }
    expect(replay.stats.applied + replay.stats.settled).toBe(0);
    expect(replay.stats.duplicates).toBeGreaterThan(0);
    expect(await snapshot()).toEqual(before);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('commits offsets once per interval, not per chunk, and a stop commits everything it applied', async () => {
    const group = `${config.consumer.group}-interval`;
    const reader = createCommandWorker({
      // An interval longer than the test: only the stop can commit.
      config: { ...config, consumer: { ...config.consumer, group, commitIntervalMs: 60_000 } },
      kafka,
      pool: db.pool,
      log: testLog,
    });
    const filled = await nonEmptyPartitions(kafka, config.topics.commands);
    await reader.start();
    try {
      await eventually(
        async () => {
          const { lag } = reader.stats;
          return filled.every((p) => lag.get(p) === 0) ? true : undefined;
        },
        60_000,
        'the new group reading every partition to its end',
      );
      expect(reader.stats.chunks).toBeGreaterThan(filled.length - 1);
      expect(reader.stats.offsetCommits).toBe(0);
    } finally {
      await reader.stop();
    }
    expect(reader.stats.offsetCommits).toBe(1);
    // Right after the stop, not eventually: a restart of the group would be delivered nothing again.
    expect(await behindEnd(kafka, group, config.topics.commands, 0), 'messages a restart would deliver again').toBe(0);
  });
});

/** Messages between a group's committed offsets and the topic's end, once it stops moving or after `timeoutMs`. */
async function behindEnd(kafka: Kafka, group: string, topic: string, timeoutMs: number): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Read the ends each time: re-consuming publishes the settles of transfers again (as duplicates).
      const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
      const committed = (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]?.partitions ?? [];
      let behind = 0n;
      for (const [partition, end] of ends) {
        const at = BigInt(committed.find((p) => p.partition === partition)?.offset ?? '-1');
        behind += at < 0n ? end : end - at;
      }
      if (behind <= 0n || Date.now() > deadline) return Number(behind);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } finally {
    await admin.disconnect();
  }
}

/** Two user ids whose keys land on different partitions under murmur2. */
async function usersOnDifferentPartitions(partitions: number): Promise<[number, number]> {
  const { partitionOfKey } = await import('../../src/kafka/partition.ts');
  const a = 400;
  for (let b = 401; b < 500; b += 1) {
    if (partitionOfKey(String(b), partitions) !== partitionOfKey(String(a), partitions)) return [a, b];
  }
  throw new Error('no pair found');
}

async function readTopic(kafka: Kafka, topic: string, count: number) {
  const consumer = kafka.consumer({ groupId: `read-${uniqueSuffix()}`, maxWaitTimeInMs: 100 });
  const messages: Array<{ key: string; value: string; headers: Record<string, string> }> = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
      messages.push({ key: String(message.key), value: String(message.value), headers });
    },
  });
  await eventually(async () => (messages.length >= count ? true : undefined), 30_000, `${count} messages on ${topic}`);
  await consumer.disconnect();
  return messages.sort((x, y) => Number(x.headers['x-source-offset']) - Number(y.headers['x-source-offset']));
}

/** The partitions of `topic` that hold messages. */
async function nonEmptyPartitions(kafka: Kafka, topic: string): Promise<number[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return (await admin.fetchTopicOffsets(topic)).filter((p) => BigInt(p.high) > BigInt(p.low)).map((p) => p.partition);
  } finally {
    await admin.disconnect();
  }
}
