import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { createCommandSchema } from '../../src/commands/schema.ts';
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
    const schema = createCommandSchema(config.limits);
    const run = uniqueSuffix();
    const values = fc.sample(rawValue, { numRuns: BAD_MESSAGES * 2, seed: 20261126 }).filter((v) => !parseCommandMessage(v, schema).ok).slice(0, BAD_MESSAGES);
    expect(values.length).toBe(BAD_MESSAGES);
    // Each bad message is followed, on the same partition, by a good deposit of 0.01.
    const messages = values.flatMap((value, i) => [
      { raw: value, key: '9' },
      { raw: JSON.stringify({ id: `${run}-${i}`, type: 'deposit', user_id: 9, amount: '0.01' }), key: '9' },
    ]);
    await publish(kafka, config.topics.commands, messages);
    await eventually(async () => (worker.stats.deadLettered >= BAD_MESSAGES && (await balancesOf(db.pool, 9)).available >= BigInt(BAD_MESSAGES) ? true : undefined), 60_000, 'all messages');
    expect(worker.stats.deadLettered).toBe(BAD_MESSAGES);
    expect((await balancesOf(db.pool, 9)).available).toBe(BigInt(BAD_MESSAGES));
    expect(await readDeadLetters(kafka, config.topics.deadLetters, 1_000)).toHaveLength(BAD_MESSAGES);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });
});
