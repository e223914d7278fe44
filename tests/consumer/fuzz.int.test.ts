import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { replyTopicPolicyOf } from '../../src/commands/reply-topics.ts';
import { consumerCommandSchema } from '../../src/commands/schema.ts';
import { partitionOfKey } from '../../src/kafka/partition.ts';
import type { CommandWorker } from '../../src/consumer/worker.ts';
import { parseCommandMessage } from '../../src/consumer/parse-message.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { readDeadLetters } from '../../src/tools/dlq.ts';
import { balancesOf, publish } from '../helpers/commands.ts';
import { eventually, startStack, uniqueSuffix, type RunningStack, type TestDatabase } from '../helpers/stack.ts';

const BAD_MESSAGES = 300;

/** Raw message values of every kind: bytes, JSON of any shape, and near-miss commands. */
const rawValue = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
  fc.json().map((text) => Buffer.from(text)),
  fc
    .record(
      {
        id: fc.oneof(fc.string(), fc.integer()),
        type: fc.oneof(fc.constantFrom('deposit', 'withdraw', 'transfer'), fc.string()),
        user_id: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.double(), fc.string()),
        amount: fc.oneof(fc.double(), fc.string(), fc.constantFrom('1e3', '-1.00', '0.001', '99999999999999999999')),
        recipient_id: fc.integer(),
      },
      { requiredKeys: [] },
    )
    .map((record) => Buffer.from(JSON.stringify(record))),
);

describe('fuzzed command-topic messages against the real consumer', () => {
  let stack: RunningStack;
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  let worker: CommandWorker;

  beforeAll(async () => {
    stack = await startStack();
    ({ db, config, kafka, worker } = stack);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('dead-letters every bad message, keeps running, and applies every good command after a bad one', async () => {
    const schema = consumerCommandSchema();
    const run = uniqueSuffix();
    const values = fc
      .sample(rawValue, { numRuns: BAD_MESSAGES * 2, seed: 20261126 })
      .filter((v) => !parseCommandMessage(v, schema).ok)
      .slice(0, BAD_MESSAGES);
    expect(values.length).toBe(BAD_MESSAGES);
    // Each bad message is followed, on the same partition, by a good deposit of 0.01.
    const messages = values.flatMap((value, i) => [
      { raw: value, key: '9' },
      { raw: JSON.stringify({ id: `${run}-${i}`, type: 'deposit', user_id: 9, amount: '0.01' }), key: '9' },
    ]);
    await publish(kafka, config.topics.commands, messages);
    await eventually(
      async () =>
        worker.stats.deadLettered >= BAD_MESSAGES && (await balancesOf(db.pool, 9)).available >= BigInt(BAD_MESSAGES)
          ? true
          : undefined,
      60_000,
      'all messages',
    );
    expect(worker.stats.deadLettered).toBe(BAD_MESSAGES);
    expect((await balancesOf(db.pool, 9)).available).toBe(BigInt(BAD_MESSAGES));
    expect(await readDeadLetters(kafka, config.topics.deadLetters, 1_000)).toHaveLength(BAD_MESSAGES);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });
});

/** Text with what breaks storage and logs: NUL, escape, lone surrogates, and ordinary text. */
const nastyText = fc.string({
  unit: fc.oneof(
    fc.constantFrom('\u0000', '\u001b', '\u0007', '\t', '\n', '\ud800', '\udfff', 'ж', '💰', '"', '\\', "'"),
    fc.string({ minLength: 1, maxLength: 1 }),
  ),
  maxLength: 40,
});

describe('arbitrary command JSON against the real consumer', () => {
  let stack: RunningStack;

  beforeAll(async () => {
    stack = await startStack();
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('ends every message as applied, rejected or dead-lettered, and the canaries on every partition apply', async () => {
    const { db, config, kafka, worker } = stack;
    const schema = consumerCommandSchema();
    const oddTopic = fc.oneof(
      fc.constantFrom(
        '__consumer_offsets',
        config.topics.commands,
        config.topics.deadLetters,
        config.topics.replies,
        '',
        'a'.repeat(300),
        'has space',
      ),
      fc.string({ maxLength: 20 }).map((s) => `${config.topics.replyPrefix}${s}`),
      nastyText,
    );
    let sequence = 0;
    // Each field is usually valid and sometimes hostile, so many messages reach the ledger with
    // one hostile part (a NUL in the comment, an odd reply_to) rather than failing on several.
    const mostly = <T, U>(valid: fc.Arbitrary<T>, hostile: fc.Arbitrary<U>) =>
      fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: hostile });
    const command = fc
      .record(
        {
          id: mostly(fc.constant(null), fc.oneof(nastyText, fc.integer())),
          type: mostly(
            fc.constantFrom(
              'deposit',
              'withdraw',
              'reserve',
              'capture',
              'release',
              'transfer',
              'set_alert',
              'remove_alert',
            ),
            fc.oneof(fc.constant('settle'), nastyText),
          ),
          user_id: mostly(fc.integer({ min: 1, max: 12 }), fc.constantFrom(0, -1, 1.5, 2 ** 53, 1e20, '3', Number.NaN)),
          recipient_id: fc.integer({ min: 1, max: 12 }),
          service_id: mostly(fc.integer({ min: 1, max: 3 }), fc.constant(2 ** 63)),
          order_id: fc.integer({ min: 1, max: 3 }),
          amount: mostly(
            fc.constantFrom('0.01', '1.00', '10.50', 5),
            fc.oneof(
              fc.constantFrom('1e3', '-1.00', '0.001', '99999999999999999999.99', '1000000000.01', 'NaN'),
              nastyText,
              fc.double(),
            ),
          ),
          comment: mostly(fc.constantFrom('ok', 'line\nbreak', 'ж'), nastyText),
          direction: mostly(fc.constantFrom('below', 'above'), nastyText),
          threshold: mostly(
            fc.constantFrom('0.01', '10.00'),
            fc.oneof(fc.constantFrom('0', '-1.00', '1e3'), nastyText),
          ),
          alert_id: mostly(fc.constantFrom('fz-alert', '~http:1:fz'), nastyText),
          reply_to: oddTopic,
        },
        {
          requiredKeys: [
            'id',
            'type',
            'user_id',
            'recipient_id',
            'service_id',
            'order_id',
            'amount',
            'comment',
            'direction',
            'threshold',
            'alert_id',
          ],
        },
      )
      // A null id means a fresh valid one, so most messages get far enough to reach the ledger.
      .map((record) => ({ ...record, id: record.id === null ? `fz-${uniqueSuffix()}-${++sequence}` : record.id }));
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 40, maxLength: 80 }), async (records) => {
        const values = records.map((record) => Buffer.from(JSON.stringify(record)));
        const parsed = values.map((value) => parseCommandMessage(value, schema, replyTopicPolicyOf(config.topics)));
        // Settles from outside carry no proof: they must be dead-lettered, never applied.
        const decided = new Set(parsed.flatMap((p) => (p.ok && p.command.type !== 'settle' ? [p.command.id] : [])));
        const moved = parsed.filter((p) => !p.ok || p.command.type === 'settle').length;
        const before = { moved: worker.stats.deadLettered - worker.stats.unprocessable };
        await publish(
          kafka,
          config.topics.commands,
          values.map((value, i) => ({ raw: value, key: String(i % 12) })),
        );
        const settled = async () => {
          const found = (
            await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM commands WHERE id = ANY($1)', [
              [...decided],
            ])
          ).rows[0]!.n;
          const deadLettered = worker.stats.deadLettered - worker.stats.unprocessable - before.moved;
          return { found, deadLettered };
        };
        const outcome = await eventually(
          async () => {
            const now = await settled();
            return now.found === decided.size && now.deadLettered >= moved ? now : undefined;
          },
          30_000,
          'every message decided',
        ).catch(async () => settled());
        expect(outcome).toEqual({ found: decided.size, deadLettered: moved });
        await canaries(stack);
      }),
      { numRuns: 5, seed: 20261128, endOnFailure: true },
    );
    expect(await verifyLedger(db.pool)).toEqual([]);
  });
});

/** One deposit on every partition, each applied within 10 s. */
async function canaries(stack: RunningStack): Promise<void> {
  const { config, kafka, db } = stack;
  const users = new Map<number, number>();
  for (let user = 100_000; users.size < config.topics.commandPartitions; user += 1) {
    const partition = partitionOfKey(String(user), config.topics.commandPartitions);
    if (!users.has(partition)) users.set(partition, user);
  }
  const ids = [...users.values()].map((user) => ({
    id: `canary-${uniqueSuffix()}`,
    type: 'deposit' as const,
    user_id: user,
    amount: '0.01',
  }));
  await publish(kafka, config.topics.commands, ids);
  const applied = async () =>
    (
      await db.pool.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM commands WHERE id = ANY($1) AND status = 'applied'",
        [ids.map((c) => c.id)],
      )
    ).rows[0]!.n;
  const count = await eventually(
    async () => ((await applied()) === ids.length ? ids.length : undefined),
    10_000,
    'canaries',
  ).catch(applied);
  expect(count, 'canaries applied within 10 s, one per partition').toBe(ids.length);
}
