/**
 * Holds that expire, against the real broker and database: the consumer's sweeper publishes a
 * signed `expire` for each hold past its `expires_in_s`, and the command, in the partition's
 * order, decides. A replay of the log decides the same.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { InternalCommandSigner } from '../../src/commands/internal-proof.ts';
import { createCommandSchema, expireIdOf, type Command } from '../../src/commands/schema.ts';
import { HoldExpirySweeper, RESEND_AFTER_MS, resendAfterMs } from '../../src/consumer/hold-expiry.ts';
import { internalCommandMessage } from '../../src/consumer/outbox.ts';
import { createCommandWorker, type CommandWorker } from '../../src/consumer/worker.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { reconcile } from '../../src/tools/reconcile.ts';
import {
  balancesOf,
  collectReplies,
  publish,
  replayEverything,
  type ReplyCollector,
  type WireCommand,
} from '../helpers/commands.ts';
import {
  counterAfter,
  createTestDatabase,
  createTestTopics,
  testConfig,
  testKafka,
  testLog,
  uniqueSuffix,
  type TestDatabase,
} from '../helpers/stack.ts';

/** The bound: a 2-second hold is back in available within 4 s of its reserve's reply. */
const EXPIRED_WITHIN_MS = 4_000;

describe('holds that expire', () => {
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  let worker: CommandWorker;
  let replies: ReplyCollector;
  const run = uniqueSuffix();
  const id = (name: string) => `${run}-${name}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db, { consumer: { holdExpirySweepMs: 200 } });
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
    await publish(kafka, config.topics.commands, commands);
    return replies.waitFor(commands.map((c) => c.id));
  }

  /** Publishes an expire as the sweeper would: signed with the consumer's key. */
  async function publishSignedExpire(command: Extract<Command, { type: 'expire' }>) {
    const message = internalCommandMessage(command, new InternalCommandSigner(config.internalCommands).sign(command));
    const proof = String(message.headers?.['x-internal-proof']);
    await publish(kafka, config.topics.commands, [
      { raw: message.value, key: String(command.user_id), headers: { 'x-internal-proof': proof } },
    ]);
  }

  const commandRow = async (commandId: string) =>
    (await db.pool.query('SELECT status, code FROM commands WHERE id = $1', [commandId])).rows;

  it('returns a 2-second hold to available within 4 s, once, and refuses a capture after it', async () => {
    const user = 9_001;
    await send([{ id: id('dep'), type: 'deposit', user_id: user, amount: '10.00' }]);
    const reserved = await send([
      { id: id('res'), type: 'reserve', user_id: user, service_id: 3, order_id: 30, amount: '3.00', expires_in_s: 2 },
    ]);
    const repliedAt = Date.now();
    expect(reserved.get(id('res'))).toMatchObject({ status: 'applied' });
    expect((await balancesOf(db.pool, user)).available).toBe(700n);

    // Watched for longer than the bound, so a hold that never comes back shows as balances.
    let backAt: number | null = null;
    while (backAt === null && Date.now() - repliedAt < 3 * EXPIRED_WITHIN_MS) {
      if ((await balancesOf(db.pool, user)).available === 1_000n) backAt = Date.now();
      else await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(await balancesOf(db.pool, user)).toMatchObject({ available: 1_000n, reserved: 0n });
    const elapsedMs = (backAt ?? Date.now()) - repliedAt;
    expect(elapsedMs, `back in available after ${elapsedMs} ms`).toBeLessThanOrEqual(EXPIRED_WITHIN_MS);
    const history = await db.pool.query(
      'SELECT transaction_type, amount, command_id FROM transactions WHERE user_id = $1 ORDER BY id',
      [user],
    );
    expect(history.rows.at(-1)).toEqual({
      transaction_type: 'expire',
      amount: '300',
      command_id: expireIdOf(id('res')),
    });
    const status = await db.pool.query(
      'SELECT status, expires_at IS NOT NULL AS has_expiry FROM reservations WHERE reserve_command_id = $1',
      [id('res')],
    );
    expect(status.rows).toEqual([{ status: 'expired', has_expiry: true }]);

    // Another copy (a second consumer's sweep) is the same command: nothing happens twice.
    await publishSignedExpire({
      id: expireIdOf(id('res')),
      type: 'expire',
      user_id: user,
      service_id: 3,
      order_id: 30,
    });
    const capture = await send([
      { id: id('cap'), type: 'capture', user_id: user, service_id: 3, order_id: 30, amount: '1.00' },
    ]);
    expect(capture.get(id('cap'))).toMatchObject({ status: 'rejected', code: 'reservation_expired' });
    expect(await commandRow(expireIdOf(id('res')))).toEqual([{ status: 'applied', code: 'ok' }]);
    expect(await balancesOf(db.pool, user)).toMatchObject({ available: 1_000n, reserved: 0n });
  });

  it('lets a capture applied before the expire win; the expire then finds nothing to return', async () => {
    const user = 9_002;
    const result = await send([
      { id: id('dep2'), type: 'deposit', user_id: user, amount: '10.00' },
      { id: id('res2'), type: 'reserve', user_id: user, service_id: 3, order_id: 31, amount: '4.00', expires_in_s: 1 },
      { id: id('cap2'), type: 'capture', user_id: user, service_id: 3, order_id: 31, amount: '4.00' },
    ]);
    expect(result.get(id('cap2'))).toMatchObject({ status: 'applied' });
    await publishSignedExpire({
      id: expireIdOf(id('res2')),
      type: 'expire',
      user_id: user,
      service_id: 3,
      order_id: 31,
    });
    const canary = await send([{ id: id('canary2'), type: 'deposit', user_id: user, amount: '0.01' }]);
    expect(canary.get(id('canary2'))).toMatchObject({ status: 'applied' });
    expect(await commandRow(expireIdOf(id('res2')))).toEqual([{ status: 'rejected', code: 'reservation_not_found' }]);
    expect(await balancesOf(db.pool, user)).toMatchObject({ available: 601n, reserved: 0n });
  });

  it("refuses an expire without the consumer's proof, and keeps the partition going", async () => {
    const user = 9_003;
    await send([
      { id: id('dep3'), type: 'deposit', user_id: user, amount: '10.00' },
      { id: id('res3'), type: 'reserve', user_id: user, service_id: 3, order_id: 32, amount: '5.00' },
    ]);
    const forgedBefore = worker.stats.forged;
    const forged = { id: expireIdOf(id('res3')), type: 'expire', user_id: user, service_id: 3, order_id: 32 };
    await publish(kafka, config.topics.commands, [
      { raw: JSON.stringify(forged), key: String(user), headers: { 'x-internal-proof': 'v1.AAAAAAAA.AAAA' } },
    ]);
    const canary = await send([{ id: id('canary3'), type: 'deposit', user_id: user, amount: '0.01' }]);
    expect(canary.get(id('canary3'))).toMatchObject({ status: 'applied' });
    expect((await counterAfter(() => worker.stats.forged, forgedBefore)) - forgedBefore).toBe(1);
    expect(await commandRow(forged.id)).toEqual([]);
    expect(await balancesOf(db.pool, user)).toMatchObject({ available: 501n, reserved: 500n });
  });

  it('is reproduced exactly by a replay of the log into an empty database', async () => {
    const rebuilt = await createTestDatabase();
    try {
      await replayEverything(kafka, config, rebuilt.pool);
      const outcomes = `SELECT id, status, code FROM commands ORDER BY id`;
      expect((await rebuilt.pool.query(outcomes)).rows).toEqual((await db.pool.query(outcomes)).rows);
      const holds = 'SELECT reserve_command_id, status, close_command_id FROM reservations ORDER BY reserve_command_id';
      expect((await rebuilt.pool.query(holds)).rows).toEqual((await db.pool.query(holds)).rows);
      expect(await reconcile(db.pool, rebuilt.pool)).toEqual([]);
      expect(await verifyLedger(rebuilt.pool)).toEqual([]);
    } finally {
      await rebuilt.drop();
    }
  });
});

describe('the hold-expiry sweeper', () => {
  /** Inserts open (or closed) holds the way the consumer's write does: due again at their expiry. */
  async function insertHolds(
    db: TestDatabase,
    holds: ReadonlyArray<{
      user: number;
      reserve: string;
      order: number;
      expires: string;
      status?: string;
      partition?: number;
    }>,
  ): Promise<void> {
    for (const hold of holds) {
      await db.pool.query(
        "INSERT INTO commands (id, fingerprint, type, user_id, status, code) VALUES ($1, 'f', 'reserve', $2, 'applied', 'ok')",
        [hold.reserve, hold.user],
      );
      const status = hold.status ?? 'open';
      await db.pool.query(
        `INSERT INTO reservations (user_id, service_id, order_id, amount, status, reserve_command_id, close_command_id,
                                   expires_at, expire_next_at, source_partition)
         VALUES ($1, 3, $2, 100, $3, $4, $5, ${hold.expires}, ${hold.expires}, $6)`,
        [hold.user, hold.order, status, hold.reserve, status === 'open' ? null : hold.reserve, hold.partition ?? 0],
      );
    }
  }

  function sweeperOf(
    db: TestDatabase,
    options: {
      batchMax: number;
      send: (messages: Array<{ key: unknown; value: unknown; headers?: Record<string, unknown> }>) => void;
      owned?: () => number[];
    },
  ): HoldExpirySweeper {
    const config = testConfig(db);
    return new HoldExpirySweeper({
      pool: db.pool,
      sink: { sendCore: async (batch) => options.send(batch.flatMap((t) => t.messages)) },
      signer: new InternalCommandSigner(config.internalCommands),
      commandTopic: config.topics.commands,
      sweepMs: 1_000,
      batchMax: options.batchMax,
      log: testLog,
      ...(options.owned ? { ownedPartitions: options.owned } : {}),
    });
  }

  it('sends one signed expire per due hold, at most HOLD_EXPIRY_BATCH_MAX a look, and not again for RESEND_AFTER_MS', async () => {
    const db = await createTestDatabase();
    try {
      await insertHolds(db, [
        { user: 77, reserve: 'due-1', order: 1, expires: "now() - interval '3 seconds'" },
        { user: 77, reserve: 'due-2', order: 2, expires: "now() - interval '2 seconds'" },
        { user: 77, reserve: 'due-3', order: 3, expires: "now() - interval '1 second'" },
        { user: 77, reserve: 'later', order: 4, expires: "now() + interval '1 hour'" },
        { user: 77, reserve: 'never', order: 5, expires: 'NULL' },
        { user: 77, reserve: 'closed', order: 6, expires: "now() - interval '1 hour'", status: 'released' },
      ]);
      const config = testConfig(db);
      const signer = new InternalCommandSigner(config.internalCommands);
      const sent: Array<{ key: unknown; value: unknown; headers?: Record<string, unknown> }> = [];
      const sweeper = sweeperOf(db, { batchMax: 2, send: (messages) => sent.push(...messages) });
      const now = Date.now();
      const counts = [
        await sweeper.sweepOnce(now),
        await sweeper.sweepOnce(now + 1),
        await sweeper.sweepOnce(now + 2),
        await sweeper.sweepOnce(now + RESEND_AFTER_MS),
      ];
      expect(counts).toEqual([2, 1, 0, 2]);
      const schema = createCommandSchema(config.limits);
      const commands = sent.map((m) => schema.parse(JSON.parse(String(m.value))));
      expect(commands.map((c) => c.id)).toEqual(
        ['due-1', 'due-2', 'due-3', 'due-1', 'due-2'].map((reserve) => expireIdOf(reserve)),
      );
      expect(commands[0]).toEqual({ id: '~expire:due-1', type: 'expire', user_id: 77, service_id: 3, order_id: 1 });
      for (const [i, message] of sent.entries()) {
        expect(message.key).toBe('77');
        const proof = message.headers?.['x-internal-proof'] as string;
        expect(signer.verify(commands[i] as Extract<Command, { type: 'expire' }>, proof)).toBe(true);
      }
    } finally {
      await db.drop();
    }
  });

  it('sends the copies of one expire further and further apart, and only from the consumer that holds its partition', async () => {
    const db = await createTestDatabase();
    try {
      await insertHolds(db, [
        { user: 78, reserve: 'stuck', order: 1, expires: "now() - interval '1 minute'", partition: 2 },
      ]);
      let sent = 0;
      let owned = [2];
      const sweeper = sweeperOf(db, {
        batchMax: 10,
        send: (messages) => (sent += messages.length),
        owned: () => owned,
      });
      const now = Date.now();
      const s = RESEND_AFTER_MS;
      // The partition never applies it (stuck): copies at 0, 1, 3 and 7 back-off units, not every unit.
      const sweepsAt = [0, s, 2 * s, 3 * s, 5 * s, 7 * s, 10 * s];
      const counts = [];
      for (const at of sweepsAt) counts.push(await sweeper.sweepOnce(now + at));
      expect(counts).toEqual([1, 1, 0, 1, 0, 1, 0]);
      expect(sent).toBe(4);
      expect([1, 2, 3, 4, 100].map(resendAfterMs)).toEqual([s, 2 * s, 4 * s, 8 * s, 60 * 60_000]);
      // Another consumer holds the partition now: nothing from this one, however long.
      owned = [0, 1];
      expect(await sweeper.sweepOnce(now + 100 * s)).toBe(0);
      expect(sent).toBe(4);
      // The back-off is the hold's, not the sweeper's: a new sweeper (a restart) keeps to it.
      owned = [2];
      const restarted = sweeperOf(db, {
        batchMax: 10,
        send: (messages) => (sent += messages.length),
        owned: () => owned,
      });
      expect(await restarted.sweepOnce(now + 14 * s)).toBe(0);
      expect(await restarted.sweepOnce(now + 15 * s)).toBe(1);
    } finally {
      await db.drop();
    }
  });

  it("finds its own partitions' due holds behind any number of other partitions' due holds", async () => {
    const db = await createTestDatabase();
    try {
      // Forty due holds of partition 0 (another consumer's), due first; one of partition 1 (ours).
      await insertHolds(db, [
        ...Array.from({ length: 40 }, (_, i) => ({
          user: 80,
          reserve: `theirs-${i}`,
          order: i + 1,
          expires: `now() - interval '${100 - i} seconds'`,
          partition: 0,
        })),
        { user: 81, reserve: 'ours', order: 1, expires: "now() - interval '10 seconds'", partition: 1 },
      ]);
      const sent: string[] = [];
      const sweeper = sweeperOf(db, {
        batchMax: 2,
        send: (messages) => sent.push(...messages.map((m) => String(m.key))),
        owned: () => [1],
      });
      expect(await sweeper.sweepOnce()).toBe(1);
      expect(sent).toEqual(['81']);
    } finally {
      await db.drop();
    }
  });

  it('keeps to the back-off schedule for 200 due holds of a stalled partition, ten a look, over ten minutes', async () => {
    const db = await createTestDatabase();
    try {
      const holds = 200;
      await insertHolds(
        db,
        Array.from({ length: holds }, (_, i) => ({
          user: 90,
          reserve: `stalled-${i}`,
          order: i + 1,
          expires: `now() - interval '${holds - i} seconds'`,
        })),
      );
      const sends = new Map<string, number[]>();
      let at = 0;
      const sweeper = sweeperOf(db, {
        batchMax: 10,
        send: (messages) => {
          for (const m of messages) {
            const id = JSON.parse(String(m.value)).id as string;
            sends.set(id, [...(sends.get(id) ?? []), at]);
          }
        },
      });
      // A look every 5 s for 10 minutes of the sweeper's clock; the partition applies none of them.
      const start = Date.now();
      const sweepMs = 5_000;
      for (at = 0; at <= 10 * 60_000; at += sweepMs) await sweeper.sweepOnce(start + at);
      // Every hold was sent (none starved), and no copy came before the back-off after the last.
      expect(sends.size).toBe(holds);
      const early: string[] = [];
      for (const [id, times] of sends)
        for (let copy = 1; copy < times.length; copy += 1)
          if (times[copy]! - times[copy - 1]! < resendAfterMs(copy)) early.push(`${id} copy ${copy + 1}`);
      expect(early).toEqual([]);
      // Copies at 0, 30, 90, 210 and 450 s of a hold's first send at most: five each.
      const total = [...sends.values()].reduce((sum, times) => sum + times.length, 0);
      expect(total).toBeLessThanOrEqual(holds * 5);
      expect(total).toBeGreaterThan(holds);
    } finally {
      await db.drop();
    }
  });
});
