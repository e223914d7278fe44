/**
 * Nothing a message contains can stop its partition. Each case ends with a canary: a normal
 * deposit on the same partition that must be applied within CANARY_WAIT_MS.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { INTERNAL_PROOF_HEADER, InternalCommandSigner } from '../../src/commands/internal-proof.ts';
import { KeyRing } from '../../src/commands/key-ring.ts';
import { PRINCIPAL_HEADER, PRINCIPAL_PROOF_HEADER } from '../../src/commands/principal-proof.ts';
import { REPLY_KEY_HEADER } from '../../src/commands/reply-topics.ts';
import type { CommandWorker } from '../../src/consumer/worker.ts';
import { partitionOfKey } from '../../src/kafka/partition.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { readDeadLetters, type DeadLetter } from '../../src/tools/dlq.ts';
import { parseFrom, parseTo, replay } from '../../src/tools/replay.ts';
import { balancesOf, collectReplies, publish, waitForSettles, type ReplyCollector } from '../helpers/commands.ts';
import {
  counterAfter,
  createTestDatabase,
  eventually,
  startStack,
  testLog,
  uniqueSuffix,
  type RunningStack,
  type TestDatabase,
} from '../helpers/stack.ts';

const CANARY_WAIT_MS = 10_000;

describe('poison commands never halt a partition', () => {
  let stack: RunningStack;
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  let worker: CommandWorker;
  let replies: ReplyCollector;
  const cleanup: TestDatabase[] = [];

  beforeAll(async () => {
    stack = await startStack({ consumer: { partitionPauseMs: 1_000 } });
    ({ db, config, kafka, worker } = stack);
    replies = await collectReplies(kafka, config.topics.replies);
  });
  afterAll(async () => {
    await replies?.stop();
    await stack?.stop();
    for (const other of cleanup) await other.drop();
  });

  const raw = (user: number, value: object | string) => ({
    raw: typeof value === 'string' ? value : JSON.stringify(value),
    key: String(user),
  });

  /** A normal deposit on `user`'s partition, applied within CANARY_WAIT_MS. */
  async function canary(user: number): Promise<void> {
    const id = `canary-${uniqueSuffix()}`;
    await publish(kafka, config.topics.commands, [{ id, type: 'deposit', user_id: user, amount: '0.01' }]);
    const reply = (await replies.waitFor([id], CANARY_WAIT_MS)).get(id)!;
    expect(reply).toMatchObject({ status: 'applied', duplicate: false });
  }

  /** Another user id whose commands land on the same partition as `user`'s. */
  function neighbourOf(user: number): number {
    const partition = partitionOfKey(String(user), config.topics.commandPartitions);
    for (let other = user + 1; ; other += 1)
      if (partitionOfKey(String(other), config.topics.commandPartitions) === partition) return other;
  }

  async function deadLettersWhere(predicate: (letter: DeadLetter) => boolean, count: number): Promise<DeadLetter[]> {
    return eventually(
      async () => {
        const found = (await readDeadLetters(kafka, config.topics.deadLetters, 10_000)).filter(predicate);
        return found.length >= count ? found : undefined;
      },
      30_000,
      `${count} dead letters`,
    );
  }

  it('answers a NUL in a comment with invalid_command, and the partition goes on', async () => {
    const user = 1_001;
    const id = `nul-${uniqueSuffix()}`;
    // JSON's own escape: the value reaches the consumer as a string holding U+0000.
    await publish(kafka, config.topics.commands, [
      raw(user, `{"id":"${id}","type":"deposit","user_id":${user},"amount":"1.00","comment":"a\\u0000b"}`),
    ]);
    expect((await replies.waitFor([id])).get(id)).toMatchObject({ status: 'rejected', code: 'invalid_command' });
    expect(replies.replies.get(id)![0]!.message).toContain('comment');
    await canary(user);
    expect(await balancesOf(db.pool, user)).toEqual({ available: 1n, reserved: 0n, incoming: 0n });
  });

  it('isolates a command PostgreSQL refuses: recorded unprocessable, dead-lettered, its chunk applied, and a replay decides the same', async () => {
    await db.pool.query(
      "ALTER TABLE transactions ADD CONSTRAINT test_refuses_poison CHECK (comment IS DISTINCT FROM 'poison')",
    );
    const user = 1_002;
    const run = uniqueSuffix();
    const ids = ['a', 'b', 'c', 'd'].map((name) => `${run}-${name}`);
    await publish(kafka, config.topics.commands, [
      { id: ids[0]!, type: 'deposit', user_id: user, amount: '10.00' },
      { id: ids[1]!, type: 'deposit', user_id: user, amount: '1.00', comment: 'poison' },
      { id: ids[2]!, type: 'deposit', user_id: user, amount: '2.00' },
      { id: ids[3]!, type: 'withdraw', user_id: user, amount: '11.00' },
    ]);
    const result = await replies.waitFor(ids);
    expect(ids.map((id) => [result.get(id)!.status, result.get(id)!.code])).toEqual([
      ['applied', 'ok'],
      ['rejected', 'unprocessable'],
      ['applied', 'ok'],
      ['applied', 'ok'],
    ]);
    expect(result.get(ids[1]!)!.message).toMatch(/SQLSTATE 23514/);
    expect(result.get(ids[1]!)!.message).not.toContain('test_refuses_poison');
    expect(await balancesOf(db.pool, user)).toEqual({ available: 100n, reserved: 0n, incoming: 0n });
    const stored = await db.pool.query('SELECT status, code FROM commands WHERE id = $1', [ids[1]]);
    expect(stored.rows).toEqual([{ status: 'rejected', code: 'unprocessable' }]);
    const [letter] = await deadLettersWhere((l) => l.headers['x-error-code'] === 'unprocessable', 1);
    expect(letter!.headers).toMatchObject({ 'x-sqlstate': '23514', 'x-source-topic': config.topics.commands });
    expect(JSON.parse(letter!.value!.toString()).id).toBe(ids[1]);
    expect(await counterAfter(() => worker.stats.unprocessable, 0)).toBe(1);

    // Redelivered: answered from the record, never tried again.
    await publish(kafka, config.topics.commands, [
      { id: ids[1]!, type: 'deposit', user_id: user, amount: '1.00', comment: 'poison' },
    ]);
    await eventually(async () => ((replies.replies.get(ids[1]!)?.length ?? 0) >= 2 ? true : undefined));
    expect(replies.replies.get(ids[1]!)![1]).toMatchObject({
      status: 'rejected',
      code: 'unprocessable',
      duplicate: true,
    });
    await canary(user);

    // Replayed into an empty database with the same constraint: the same outcomes.
    const rebuilt = await createTestDatabase();
    cleanup.push(rebuilt);
    await rebuilt.pool.query(
      "ALTER TABLE transactions ADD CONSTRAINT test_refuses_poison CHECK (comment IS DISTINCT FROM 'poison')",
    );
    await replay({
      kafka,
      pool: rebuilt.pool,
      config,
      log: testLog,
      from: parseFrom('earliest'),
      to: parseTo('latest'),
      group: `replay-${run}`,
      dryRun: false,
    });
    const outcomes = 'SELECT id, status, code, message FROM commands WHERE id = ANY($1) ORDER BY id';
    expect((await rebuilt.pool.query(outcomes, [ids])).rows).toEqual((await db.pool.query(outcomes, [ids])).rows);
    expect(await balancesOf(rebuilt.pool, user)).toEqual(await balancesOf(db.pool, user));
  });

  it('isolates a command whose write would break a ledger invariant, and the partition goes on', async () => {
    // A trigger that silently keeps one order's hold open: the write then closes 0 of 1
    // reservations, and ledger_commit_chunk refuses the chunk (SQLSTATE LI001).
    await db.pool.query(`
      CREATE FUNCTION test_keep_open() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.order_id = 4242 THEN RETURN NULL; END IF; RETURN NEW; END $$;
      CREATE TRIGGER test_keep_open BEFORE UPDATE ON reservations FOR EACH ROW EXECUTE FUNCTION test_keep_open();`);
    try {
      const user = 1_042;
      const run = uniqueSuffix();
      const order = { user_id: user, service_id: 7, order_id: 4242 };
      const ids = ['deposit', 'reserve', 'capture', 'after'].map((name) => `${run}-${name}`);
      await publish(kafka, config.topics.commands, [
        { id: ids[0]!, type: 'deposit', user_id: user, amount: '10.00' },
        { id: ids[1]!, type: 'reserve', ...order, amount: '4.00' },
      ]);
      await replies.waitFor(ids.slice(0, 2));
      const before = worker.stats.unprocessable;
      await publish(kafka, config.topics.commands, [
        { id: ids[2]!, type: 'capture', ...order, amount: '4.00' },
        { id: ids[3]!, type: 'deposit', user_id: user, amount: '1.00' },
      ]);
      // Bounded: a wedged partition shows as the capture and the deposit behind it both missing.
      await replies.waitFor(ids.slice(2), CANARY_WAIT_MS).catch(() => undefined);
      const decided = (
        await db.pool.query('SELECT id, status, code FROM commands WHERE id = ANY($1) ORDER BY id', [ids])
      ).rows;
      expect(decided).toEqual([
        { id: ids[3], status: 'applied', code: 'ok' },
        { id: ids[2], status: 'rejected', code: 'unprocessable' },
        { id: ids[0], status: 'applied', code: 'ok' },
        { id: ids[1], status: 'applied', code: 'ok' },
      ]);
      expect(replies.replies.get(ids[2]!)?.[0]?.message).toMatch(/SQLSTATE LI001: a ledger invariant it would break/);
      expect(await counterAfter(() => worker.stats.unprocessable, before)).toBe(before + 1);
      expect(await balancesOf(db.pool, user)).toEqual({ available: 700n, reserved: 400n, incoming: 0n });
      await canary(user);
    } finally {
      await db.pool.query('DROP TRIGGER test_keep_open ON reservations; DROP FUNCTION test_keep_open');
    }
  });

  it('applies commands whatever their metadata says: a far-past timestamp, 100 kB of headers, odd and long reply keys, a key that is no number, a key naming another user', async () => {
    const user = 1_010;
    const partition = partitionOfKey(String(user), config.topics.commandPartitions);
    const other = [...Array(50).keys()]
      .map((i) => 5_000 + i)
      .find((u) => partitionOfKey(String(u), config.topics.commandPartitions) !== partition)!;
    const run = uniqueSuffix();
    const deposit = (name: string) => ({ id: `${run}-${name}`, type: 'deposit', user_id: user, amount: '1.00' });
    const cases = {
      // Outside what a JS Date holds. Kafka 4 accepts any CreateTime in the past by default (the
      // far future it refuses past log.message.timestamp.after.max.ms; unit tests cover it).
      farPast: { ...raw(user, deposit('far-past')), timestamp: '-9000000000000000' },
      noTimestamp: { ...raw(user, deposit('no-timestamp')), timestamp: '-1' },
      bigHeaders: {
        ...raw(user, deposit('big-headers')),
        headers: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`x-pad-${i}`, 'h'.repeat(10_000)])),
      },
      // Reply keys a producer controls: none of them may stop the partition. (A null header
      // value, which kafkajs cannot send, is a unit test of replyKeyOf.)
      replyKeyOdd: { ...raw(user, deposit('reply-key-odd')), headers: { [REPLY_KEY_HEADER]: 'no spaces, é' } },
      replyKeyLong: { ...raw(user, deposit('reply-key-long')), headers: { [REPLY_KEY_HEADER]: 'k'.repeat(10_000) } },
      keyNotANumber: { ...raw(user, deposit('key-not-a-number')), key: 'not-a-number', partition },
      keyOfAnotherUser: { ...raw(user, deposit('key-of-another-user')), key: String(other) },
    };
    const before = Date.now();
    await publish(kafka, config.topics.commands, Object.values(cases));
    const ids = Object.values(cases).map((c) => JSON.parse(c.raw).id as string);
    const answered = await replies.waitFor(ids, CANARY_WAIT_MS);
    expect(ids.map((id) => [id, answered.get(id)?.status])).toEqual(ids.map((id) => [id, 'applied']));
    await canary(user);
    await canary(other);
    expect(await balancesOf(db.pool, user)).toEqual({ available: 701n, reserved: 0n, incoming: 0n });
    // A timestamp that is no instant is not used: the event says when the consumer applied it.
    const { rows } = await db.pool.query<{ command_id: string; occurred_at: string }>(
      "SELECT command_id, payload::json->>'occurred_at' AS occurred_at FROM balance_events WHERE command_id = ANY($1)",
      [[`${run}-far-past`, `${run}-no-timestamp`]],
    );
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(Date.parse(row.occurred_at), row.command_id).toBeGreaterThanOrEqual(before - 1_000);
      expect(Date.parse(row.occurred_at), row.command_id).toBeLessThanOrEqual(Date.now());
    }
  });

  it('skips a command whose rejection cannot be recorded either, loudly, and the partition goes on', async () => {
    const user = 666;
    await db.pool.query('ALTER TABLE commands ADD CONSTRAINT test_refuses_user CHECK (user_id <> 666)');
    try {
      const id = `unrecordable-${uniqueSuffix()}`;
      const before = worker.stats.unrecorded;
      await publish(kafka, config.topics.commands, [{ id, type: 'deposit', user_id: user, amount: '5.00' }]);
      const [letter] = await deadLettersWhere((l) => l.headers['x-error-code'] === 'unrecorded', 1);
      expect(JSON.parse(letter!.value!.toString()).id).toBe(id);
      expect(await counterAfter(() => worker.stats.unrecorded, before)).toBe(before + 1);
      expect((await db.pool.query('SELECT 1 FROM commands WHERE id = $1', [id])).rowCount).toBe(0);
      await canary(neighbourOf(user));
    } finally {
      await db.pool.query('ALTER TABLE commands DROP CONSTRAINT test_refuses_user');
    }
  });

  it('replies on the default topic for reply_to targets outside the allow-list (the commands still apply), in one chunk, without a rebalance, and skips missing allowed ones', async () => {
    const user = 1_003;
    const run = uniqueSuffix();
    const joins = worker.stats.groupJoins;
    const undeliverable = worker.stats.repliesUndeliverable;
    const refused = [
      '__consumer_offsets',
      config.topics.deadLetters,
      config.topics.commands,
      ...Array.from({ length: 10 }, (_, i) => `missing.${run}.${i}`),
    ];
    const missingAllowed = Array.from({ length: 10 }, (_, i) => `${config.topics.replyPrefix}missing-${run}-${i}`);
    const started = Date.now();
    await publish(kafka, config.topics.commands, [
      ...refused.map((topic, i) => ({
        id: `${run}-refused-${i}`,
        type: 'deposit' as const,
        user_id: user,
        amount: '1.00',
        reply_to: topic,
      })),
      ...missingAllowed.map((topic, i) => ({
        id: `${run}-missing-${i}`,
        type: 'deposit' as const,
        user_id: user,
        amount: '1.00',
        reply_to: topic,
      })),
    ]);
    // Where a reply may go never decides whether a command applies (a replay with another
    // REPLY_TOPIC_PREFIX must decide the same): applied, and answered on the default topic.
    const answered = await replies.waitFor(refused.map((_, i) => `${run}-refused-${i}`));
    expect(answered.size).toBe(refused.length);
    for (const reply of answered.values()) expect(reply).toMatchObject({ status: 'applied', duplicate: false });
    const refusedApplied = await db.pool.query(
      "SELECT count(*)::int AS n FROM commands WHERE id LIKE $1 AND status = 'applied'",
      [`${run}-refused-%`],
    );
    expect(refusedApplied.rows[0].n).toBe(refused.length);
    await eventually(
      async () => (worker.stats.repliesUndeliverable >= undeliverable + 10 ? true : undefined),
      30_000,
      'skipped replies',
    );
    const applied = await db.pool.query(
      "SELECT count(*)::int AS n FROM commands WHERE id LIKE $1 AND status = 'applied'",
      [`${run}-missing-%`],
    );
    expect(applied.rows[0].n).toBe(10);
    await canary(user);
    expect(Date.now() - started).toBeLessThan(config.consumer.sessionTimeoutMs);
    expect(worker.stats.groupJoins).toBe(joins);
  });

  it('keeps publishing after a reply_to topic it already wrote to is deleted', async () => {
    const user = 1_004;
    const topic = `${config.topics.replyPrefix}deleted-${uniqueSuffix()}`;
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, replicationFactor: -1 }] });
      const first = `before-delete-${uniqueSuffix()}`;
      await publish(kafka, config.topics.commands, [
        { id: first, type: 'deposit', user_id: user, amount: '1.00', reply_to: topic },
      ]);
      await eventually(async () =>
        (await db.pool.query('SELECT 1 FROM commands WHERE id = $1', [first])).rowCount === 1 ? true : undefined,
      );
      await admin.deleteTopics({ topics: [topic] });
      const second = `after-delete-${uniqueSuffix()}`;
      await publish(kafka, config.topics.commands, [
        { id: second, type: 'deposit', user_id: user, amount: '1.00', reply_to: topic },
      ]);
      await eventually(async () =>
        (await db.pool.query('SELECT 1 FROM commands WHERE id = $1', [second])).rowCount === 1 ? true : undefined,
      );
      await canary(user);
      await canary(neighbourOf(user));
    } finally {
      await admin.disconnect();
    }
  });

  it('dead-letters twenty invalid 60 kB messages on one key and the partition goes on', async () => {
    // A stack of its own, started after the messages are in: all twenty come in one fetch and one
    // chunk, so its 1.2 MB of dead letters must be split to stay under the broker's 1 MiB limit.
    const own = await startStack({ consumer: { partitionPauseMs: 1_000 } }, { startWorker: false });
    const ownReplies = await collectReplies(own.kafka, own.config.topics.replies);
    try {
      const user = 1_005;
      const run = uniqueSuffix();
      const big = (i: number) =>
        raw(user, {
          id: `${run}-big-${i}`,
          type: 'deposit',
          user_id: user,
          amount: '1.00',
          comment: 'x'.repeat(60_000),
        });
      // Two sends: one record batch of the producer must stay under the limit too.
      await publish(
        own.kafka,
        own.config.topics.commands,
        Array.from({ length: 10 }, (_, i) => big(i)),
      );
      await publish(
        own.kafka,
        own.config.topics.commands,
        Array.from({ length: 10 }, (_, i) => big(i + 10)),
      );
      // As if every partition had its settings record already: the consumer then writes none, and
      // the one chunk it commits is the twenty.
      await own.db.pool.query(
        `INSERT INTO decision_limits (source_topic, source_partition, record_offset, amount_minor_max, balance_minor_max, alerts_per_user_max, accepted_key_ids)
         SELECT $1, p, 0, $2, $3, $4, $6 FROM generate_series(0, $5 - 1) p`,
        [
          own.config.topics.commands,
          own.config.limits.amountMinorMax,
          own.config.limits.balanceMinorMax,
          own.config.limits.alertsPerUserMax,
          own.config.topics.commandPartitions,
          new KeyRing(own.config.internalCommands).liveIds(),
        ],
      );
      await own.worker.start();
      const answered = await ownReplies.waitFor(
        Array.from({ length: 20 }, (_, i) => `${run}-big-${i}`),
        CANARY_WAIT_MS,
      );
      for (const reply of answered.values()) expect(reply.code).toBe('invalid_command');
      // Replies go out before the offset commit that counts the chunk: wait for the count.
      await eventually(
        async () => (own.worker.stats.chunks >= 1 ? true : undefined),
        CANARY_WAIT_MS,
        'the chunk committed',
      );
      expect(own.worker.stats.chunks).toBe(1);
      const letters = await readDeadLetters(own.kafka, own.config.topics.deadLetters, 100);
      expect(
        letters.filter((l) => l.key === String(user) && l.headers['x-error-code'] === 'invalid_command'),
      ).toHaveLength(20);
      for (const letter of letters) expect(letter.value!.length).toBeGreaterThan(60_000);
      const id = `canary-${uniqueSuffix()}`;
      await publish(own.kafka, own.config.topics.commands, [{ id, type: 'deposit', user_id: user, amount: '0.01' }]);
      expect((await ownReplies.waitFor([id], CANARY_WAIT_MS)).get(id)).toMatchObject({ status: 'applied' });
    } finally {
      await ownReplies.stop();
      await own.stop();
    }
  });

  it('moves no money for a forged settle, while real settles complete every transfer', async () => {
    const [sender, recipient] = [1_006, 1_007];
    const run = uniqueSuffix();
    const forgedBefore = worker.stats.forged;
    const otherKey = new InternalCommandSigner({
      secret: 'not-the-consumers-secret-0123456789abcdef',
      acceptedSecrets: [],
    });
    const settle = (transferId: string, amount: string) => ({
      id: `~settle:${transferId}`,
      type: 'settle' as const,
      user_id: recipient,
      amount,
    });
    // Published before its transfer: if it were recorded, the real settle would become a duplicate.
    await publish(kafka, config.topics.commands, [
      raw(recipient, settle(`${run}-t1`, '1000000.00')),
      {
        raw: JSON.stringify(settle(`${run}-x`, '500.00')),
        key: String(recipient),
        headers: { [INTERNAL_PROOF_HEADER]: otherKey.sign({ ...settle(`${run}-x`, '500.00'), amount: 50_000n }) },
      },
    ]);
    await publish(kafka, config.topics.commands, [
      { id: `${run}-dep`, type: 'deposit', user_id: sender, amount: '30.00' },
      { id: `${run}-t1`, type: 'transfer', user_id: sender, recipient_id: recipient, amount: '20.00' },
    ]);
    await replies.waitFor([`${run}-t1`]);
    await waitForSettles(db.pool);
    // A correctly signed settle that does not match its transfer (a leaked key, say) is refused too.
    const signer = new InternalCommandSigner(config.internalCommands);
    const altered = { ...settle(`${run}-t1`, '999.00'), amount: 99_900n };
    await publish(kafka, config.topics.commands, [
      {
        raw: JSON.stringify(settle(`${run}-t1`, '999.00')),
        key: String(recipient),
        headers: { [INTERNAL_PROOF_HEADER]: signer.sign(altered) },
      },
    ]);
    await eventually(
      async () => (worker.stats.forged >= forgedBefore + 3 ? true : undefined),
      30_000,
      'three forged settles',
    );
    await canary(recipient);
    expect(await balancesOf(db.pool, recipient)).toEqual({ available: 2_001n, reserved: 0n, incoming: 0n });
    const letters = await deadLettersWhere(
      (l) => l.key === String(recipient) && l.headers['x-error-code'] === 'invalid_command',
      3,
    );
    expect(letters.map((l) => l.headers['x-error-message'])).toEqual(
      expect.arrayContaining([expect.stringContaining('proof'), expect.stringContaining('does not match')]),
    );
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('accepts one settle per leg: a second id for a settled leg, and a settle of an unknown transfer, are refused live', async () => {
    const [sender, recipient] = [1_016, 1_017];
    const run = uniqueSuffix();
    const signer = new InternalCommandSigner(config.internalCommands);
    // A split payment with one leg: its settle is ~settle:<id>#<recipient>; ~settle:<id> names the same leg.
    await publish(kafka, config.topics.commands, [
      { id: `${run}-dep`, type: 'deposit', user_id: sender, amount: '30.00' },
      {
        id: `${run}-split`,
        type: 'transfer',
        user_id: sender,
        recipients: [{ recipient_id: recipient, amount: '20.00' }],
      },
    ]);
    await replies.waitFor([`${run}-split`]);
    await waitForSettles(db.pool);
    const forgedBefore = worker.stats.forged;
    const second = { id: `~settle:${run}-split`, type: 'settle' as const, user_id: recipient, amount: 2_000n };
    const ghost = { id: `~settle:${run}-never-sent`, type: 'settle' as const, user_id: recipient, amount: 2_000n };
    await publish(
      kafka,
      config.topics.commands,
      [second, ghost].map((settle) => ({
        raw: JSON.stringify({ ...settle, amount: '20.00' }),
        key: String(recipient),
        headers: { [INTERNAL_PROOF_HEADER]: signer.sign(settle) },
      })),
    );
    await eventually(
      async () => (worker.stats.forged >= forgedBefore + 2 ? true : undefined),
      30_000,
      'two refused settles',
    );
    await canary(recipient);
    expect(await balancesOf(db.pool, recipient)).toEqual({ available: 2_001n, reserved: 0n, incoming: 0n });
    const letters = await deadLettersWhere(
      (l) => l.key === String(recipient) && [second.id, ghost.id].includes(JSON.parse(l.value!.toString()).id),
      2,
    );
    expect(letters.map((l) => l.headers['x-error-message']).sort()).toEqual([
      expect.stringContaining('already settled'),
      expect.stringContaining('never applied'),
    ]);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('refuses a principal proof of format 1 once the partition recorded its keys, and the canary applies', async () => {
    const user = 1_018;
    const run = uniqueSuffix();
    const id = `~http:${user}:${run}-v1`;
    const principal = `service:${user}`;
    // v1 covered the id and the principal only (not the body): a copy onto another body proved it all.
    const mac = createHmac('sha256', Buffer.from(config.internalCommands.secret, 'utf8'))
      .update(`principal-v1\u001f${id}\u001f${principal}`)
      .digest('base64url');
    const forgedBefore = worker.stats.forged;
    await publish(kafka, config.topics.commands, [
      {
        raw: JSON.stringify({ id, type: 'deposit', user_id: user, amount: '9.00' }),
        key: String(user),
        headers: { [PRINCIPAL_HEADER]: principal, [PRINCIPAL_PROOF_HEADER]: mac },
      },
    ]);
    await eventually(
      async () => (worker.stats.forged > forgedBefore ? true : undefined),
      30_000,
      'the v1 proof refused',
    );
    await canary(user);
    expect((await db.pool.query('SELECT 1 FROM commands WHERE id = $1', [id])).rowCount).toBe(0);
    expect((await balancesOf(db.pool, user)).available).toBe(1n);
  });
});
