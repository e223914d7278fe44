/**
 * A rebuild trusts only what the live run trusted. Each partition records, in its own log, the
 * keys its consumer accepts (src/commands/limits-record.ts, format 2); a replay given every key
 * ever used (INTERNAL_COMMAND_KEYS) accepts a proof at an offset only if the live run did there.
 *
 * The live run rotates the internal key from K1 to K2 in the documented order (both accepted,
 * then K2 alone). After K1 is retired, a settle signed with K1 (a leaked key) and a command
 * attested by a stale gateway still on K1 are dead-lettered live; a copy of a command decided
 * under K1 is answered as the duplicate it is. The replay, with K1 listed, decides the same and
 * reconciles with the live ledger. The same log without its records (the planted fault: trust
 * by key alone, as before) rebuilds a different ledger.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTERNAL_PROOF_HEADER, InternalCommandSigner } from '../../src/commands/internal-proof.ts';
import { keyIdOf } from '../../src/commands/key-ring.ts';
import { RECORD_TYPE_HEADER } from '../../src/commands/limits-record.ts';
import { PrincipalAttestation } from '../../src/commands/principal-proof.ts';
import { commandFingerprint, consumerCommandSchema, type Command } from '../../src/commands/schema.ts';
import { type Config, withOverrides } from '../../src/config.ts';
import { createCommandWorker, type CommandWorker } from '../../src/consumer/worker.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { readDeadLetters } from '../../src/tools/dlq.ts';
import { reconcile } from '../../src/tools/reconcile.ts';
import {
  balancesOf,
  collectReplies,
  publish,
  replayEverything,
  waitForSettles,
  type ReplyCollector,
} from '../helpers/commands.ts';
import {
  createTestDatabase,
  createTestTopics,
  eventually,
  TEST_INTERNAL_COMMAND_SECRET,
  testConfig,
  testKafka,
  testLog,
  uniqueSuffix,
  type TestDatabase,
} from '../helpers/stack.ts';

const K1 = TEST_INTERNAL_COMMAND_SECRET;
const K2 = 'test-only-second-internal-command-key-0123456789';

describe('a rebuild trusts only the keys the live run accepted, where it accepted them', () => {
  let live: TestDatabase;
  const others: TestDatabase[] = [];
  let config: Config;
  let kafka: Kafka;
  let replies: ReplyCollector;
  const run = randomUUID().slice(0, 8);
  const [sender, recipient] = [8_100_001, 8_100_002];

  /** The config of a process holding `secret` and, while rotating, `previous`. */
  const keyed = (secret: string, previous?: string): Config =>
    withOverrides(config, {
      internalCommands: { secret, acceptedSecrets: previous ? [previous] : [], replaySecrets: [] },
    });

  async function withWorker<T>(workerConfig: Config, work: (worker: CommandWorker) => Promise<T>): Promise<T> {
    const worker = createCommandWorker({ config: workerConfig, kafka, pool: live.pool, log: testLog });
    await worker.start();
    try {
      return await work(worker);
    } finally {
      await worker.stop();
    }
  }

  /** Waits until every partition's record accepts exactly `secrets`. */
  async function recorded(secrets: string[]): Promise<void> {
    const wanted = secrets.map(keyIdOf).sort().join(',');
    await eventually(
      async () => {
        const { rows } = await live.pool.query<{ ids: string[] | null }>(
          'SELECT accepted_key_ids AS ids FROM decision_limits WHERE source_topic = $1',
          [config.topics.commands],
        );
        const all = rows.map((r) => (r.ids ?? []).join(','));
        return all.length === config.topics.commandPartitions && all.every((ids) => ids === wanted) ? true : undefined;
      },
      30_000,
      `every partition recording ${wanted}`,
    );
  }

  /** A command as a gateway on `secret` would publish it for `principal`. */
  function attested(command: Command, principal: string, secret: string) {
    const attestation = new PrincipalAttestation({ secret, acceptedSecrets: [] });
    return {
      raw: JSON.stringify({ ...command, amount: '5.00' }),
      key: String(command.user_id),
      headers: attestation.headers({ id: command.id, fingerprint: commandFingerprint(command) }, principal),
    };
  }

  beforeAll(async () => {
    live = await createTestDatabase();
    config = testConfig(live);
    kafka = testKafka(config);
    await createTestTopics(kafka, config);
    replies = await collectReplies(kafka, config.topics.replies);
  });
  afterAll(async () => {
    await replies?.stop();
    for (const db of others) await db.drop();
    await live?.drop();
  });

  it('rotates live without refusing anything in flight, refuses what a retired key signs, and a rebuild reconciles', async () => {
    const schema = consumerCommandSchema();
    const viaGateway = schema.parse({
      id: `~http:${sender}:${run}-gw`,
      type: 'deposit',
      user_id: sender,
      amount: '5.00',
    });
    // On K1 alone: deposits, a transfer (its settle signed with K1), a command from a gateway on K1.
    await withWorker(keyed(K1), async () => {
      await recorded([K1]);
      await publish(kafka, config.topics.commands, [
        { id: `${run}-d1`, type: 'deposit', user_id: sender, amount: '100.00' },
        { id: `${run}-t1`, type: 'transfer', user_id: sender, recipient_id: recipient, amount: '30.00' },
        attested(viaGateway, `service:${sender}`, K1),
      ]);
      await replies.waitFor([`${run}-d1`, `${run}-t1`, viaGateway.id]);
      await waitForSettles(live.pool);
    });
    // Rotating in: K2 current, K1 still accepted. The consumer records both, signing with K1
    // until every partition accepts K2, then switches by itself.
    await withWorker(keyed(K2, K1), async (worker) => {
      await recorded([K1, K2]);
      expect((await worker.signingKey.refresh()).id).toBe(keyIdOf(K2));
      await publish(kafka, config.topics.commands, [
        { id: `${run}-t2`, type: 'transfer', user_id: sender, recipient_id: recipient, amount: '10.00' },
      ]);
      await replies.waitFor([`${run}-t2`]);
      await waitForSettles(live.pool);
    });
    // K1 retired: only K2.
    await withWorker(keyed(K2), async () => {
      await recorded([K2]);
      const leaked = new InternalCommandSigner({ secret: K1, acceptedSecrets: [] });
      const settle = { id: '~settle:ghost-1', type: 'settle' as const, user_id: recipient, amount: 5_000n };
      const staleGateway = schema.parse({
        id: `~http:${sender}:${run}-stale`,
        type: 'deposit',
        user_id: sender,
        amount: '5.00',
      });
      await publish(kafka, config.topics.commands, [
        {
          raw: JSON.stringify({ ...settle, amount: '50.00' }),
          key: String(recipient),
          headers: { [INTERNAL_PROOF_HEADER]: leaked.sign(settle) },
        },
        attested(staleGateway, `service:${sender}`, K1),
        // A copy of the command decided under K1: a duplicate, not a forgery.
        attested(viaGateway, `service:${sender}`, K1),
        { id: `${run}-canary-r`, type: 'deposit', user_id: recipient, amount: '1.00' },
        { id: `${run}-canary-s`, type: 'deposit', user_id: sender, amount: '1.00' },
      ]);
      const answered = await replies.waitFor([`${run}-canary-r`, `${run}-canary-s`]);
      expect([...answered.values()].map((r) => r.status)).toEqual(['applied', 'applied']);
      await eventually(async () => ((replies.replies.get(viaGateway.id)?.length ?? 0) >= 2 ? true : undefined));
      expect(replies.replies.get(viaGateway.id)![1]).toMatchObject({ status: 'applied', duplicate: true });
      const letters = await eventually(async () => {
        const found = (await readDeadLetters(kafka, config.topics.deadLetters, 10_000)).filter(
          (l) => l.headers['x-error-code'] === 'invalid_command',
        );
        return found.length >= 2 ? found : undefined;
      });
      expect(letters.map((l) => JSON.parse(l.value!.toString()).id).sort()).toEqual(
        ['~settle:ghost-1', staleGateway.id].sort(),
      );
    });
    // 100 - 30 - 10 + 5 (the gateway's) + 1; 30 + 10 + 1, and not the forged 50.
    expect(await balancesOf(live.pool, sender)).toEqual({ available: 6_600n, reserved: 0n, incoming: 0n });
    expect(await balancesOf(live.pool, recipient)).toEqual({ available: 4_100n, reserved: 0n, incoming: 0n });

    // The rebuild, given every key ever used, K1 included.
    const rebuilt = await createTestDatabase();
    others.push(rebuilt);
    const replaying = withOverrides(config, {
      internalCommands: { secret: K2, acceptedSecrets: [], replaySecrets: [K1] },
    });
    await replayEverything(kafka, replaying, rebuilt.pool);
    expect(await reconcile(live.pool, rebuilt.pool)).toEqual([]);
    expect(await verifyLedger(rebuilt.pool)).toEqual([]);
  });

  it('(planted: the same log without its records, trusted by key alone) rebuilds a ledger that credits the forged settle', async () => {
    // Every message of the command topic but the settings records, each on its partition.
    const stripped = withOverrides(config, {
      topics: { commands: `${config.topics.commands}.stripped`, deadLetters: `${config.topics.deadLetters}.stripped` },
    });
    await createTestTopics(kafka, stripped);
    await copyTopic(kafka, config.topics.commands, stripped.topics.commands, (headers) => !headers[RECORD_TYPE_HEADER]);
    const rebuilt = await createTestDatabase();
    others.push(rebuilt);
    await replayEverything(
      kafka,
      withOverrides(stripped, { internalCommands: { secret: K2, acceptedSecrets: [], replaySecrets: [K1] } }),
      rebuilt.pool,
    );
    const differences = await reconcile(live.pool, rebuilt.pool);
    expect(differences.length).toBeGreaterThan(0);
    // The forged 50.00 and the stale gateway's 5.00, applied by key alone.
    expect(await balancesOf(rebuilt.pool, recipient)).toEqual({ available: 9_100n, reserved: 0n, incoming: -5_000n });
    expect((await balancesOf(rebuilt.pool, sender)).available).toBe(7_100n);
  });
});

/** Copies every message `keep` lets through from one topic to another, on the same partitions. */
async function copyTopic(
  kafka: Kafka,
  from: string,
  to: string,
  keep: (headers: Record<string, unknown>) => boolean,
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(from)).map((p) => [p.partition, BigInt(p.high)]));
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `copy-${uniqueSuffix()}`, maxWaitTimeInMs: 100 });
  const producer = kafka.producer();
  await Promise.all([consumer.connect(), producer.connect()]);
  const done = new Map([...ends].map(([p, end]) => [p, end === 0n]));
  try {
    await consumer.subscribe({ topic: from, fromBeginning: true });
    await consumer.run({
      eachBatch: async ({ batch }) => {
        const messages = batch.messages
          .filter((m) => keep(m.headers ?? {}))
          .map((m) => ({
            key: m.key,
            value: m.value,
            partition: batch.partition,
            timestamp: m.timestamp,
            headers: m.headers as Record<string, Buffer>,
          }));
        if (messages.length > 0) await producer.send({ topic: to, acks: -1, messages });
        const last = batch.messages.at(-1);
        if (last && BigInt(last.offset) + 1n >= ends.get(batch.partition)!) done.set(batch.partition, true);
      },
    });
    await eventually(async () => ([...done.values()].every(Boolean) ? true : undefined), 30_000, 'the copy');
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
}
