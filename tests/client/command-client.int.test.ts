/**
 * The typed client against the real broker and consumer: requests are answered through the
 * reply topic, the reply listener does not commit offsets after every batch, and each client's
 * replies come keyed to the one reply partition it reads.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandClient } from '../../src/client/command-client.ts';
import { createCommandSchema } from '../../src/commands/schema.ts';
import { kafkaRequestsSent } from '../../src/kafka/client.ts';
import { partitionOfKey } from '../../src/kafka/partition.ts';
import { eventually, type RunningStack, startStack, testLog, uniqueSuffix } from '../helpers/stack.ts';

describe('CommandClient', () => {
  let stack: RunningStack;
  let client: CommandClient;
  beforeAll(async () => {
    stack = await startStack();
    client = new CommandClient({
      kafka: stack.kafka,
      commandTopic: stack.config.topics.commands,
      replyTopic: stack.config.topics.replies,
      waitingRequestsMax: 100,
      log: testLog,
      // Longer than the test: any offset on the broker would be a commit per batch.
      replyCommitIntervalMs: 600_000,
    });
    await client.start();
  });
  afterAll(async () => {
    await client?.stop();
    await stack?.stop();
  });

  it('answers every request from the reply topic, and commits no offsets per batch for its reply group', async () => {
    const schema = createCommandSchema({ amountMinorMax: stack.config.limits.amountMinorMax });
    const run = uniqueSuffix();
    const commands = Array.from({ length: 30 }, (_, i) =>
      schema.parse({ id: `${run}-${i}`, type: 'deposit', user_id: 7_000 + (i % 5), amount: '1.00' }),
    );
    const commitsBefore = kafkaRequestsSent.get('OffsetCommit') ?? 0;
    const replies = await Promise.all(commands.map((command) => client.request(command, { timeoutMs: 10_000 })));
    expect(replies.map((r) => r?.status)).toEqual(commands.map(() => 'applied'));
    // The consumer commits its own offsets, within its commit interval (CONSUMER_COMMIT_INTERVAL_MS);
    // the listener's group has none on the broker.
    const consumerCommits = await eventually(
      async () => {
        const sent = (kafkaRequestsSent.get('OffsetCommit') ?? 0) - commitsBefore;
        return sent > 0 ? sent : undefined;
      },
      5_000,
      "the consumer's offset commit",
    );
    expect(consumerCommits).toBeGreaterThan(0);
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      const [topic] = await admin.fetchOffsets({ groupId: client.replyGroupId, topics: [stack.config.topics.replies] });
      expect(topic!.partitions.map((p) => p.offset)).toEqual(topic!.partitions.map(() => '-1'));
    } finally {
      await admin.disconnect();
    }
  });

  it('commits where its reply listener is now and then, so a rejoin goes on from there and not from the latest reply', async () => {
    const often = new CommandClient({
      kafka: stack.kafka,
      commandTopic: stack.config.topics.commands,
      replyTopic: stack.config.topics.replies,
      waitingRequestsMax: 100,
      log: testLog,
      replyCommitIntervalMs: 200,
    });
    await often.start();
    try {
      const schema = createCommandSchema({ amountMinorMax: stack.config.limits.amountMinorMax });
      const run = uniqueSuffix();
      const commands = Array.from({ length: 5 }, (_, i) =>
        schema.parse({ id: `${run}-${i}`, type: 'deposit', user_id: 7_100 + i, amount: '1.00' }),
      );
      await Promise.all(commands.map((command) => often.request(command, { timeoutMs: 10_000 })));
      const admin = stack.kafka.admin();
      await admin.connect();
      try {
        const committed = await eventually(
          async () => {
            const [topic] = await admin.fetchOffsets({
              groupId: often.replyGroupId,
              topics: [stack.config.topics.replies],
            });
            const offsets = topic!.partitions.map((p) => Number(p.offset));
            return offsets.some((offset) => offset > 0) ? offsets : undefined;
          },
          10_000,
          'a committed reply position',
        );
        expect(committed.reduce((a, b) => a + Math.max(0, b), 0)).toBeGreaterThanOrEqual(5);
      } finally {
        await admin.disconnect();
      }
    } finally {
      await often.stop();
    }
  });

  it("routes each client's replies to the one reply partition it reads, and no reply is lost", async () => {
    const partitions = stack.config.topics.replyPartitions;
    const keyA = 'reply-test-a';
    // A second key that maps to another partition than the first.
    const keyB = Array.from({ length: 100 }, (_, i) => `reply-test-b${i}`).find(
      (key) => partitionOfKey(key, partitions) !== partitionOfKey(keyA, partitions),
    )!;
    const clients = [keyA, keyB].map(
      (replyKey) =>
        new CommandClient({
          kafka: stack.kafka,
          commandTopic: stack.config.topics.commands,
          replyTopic: stack.config.topics.replies,
          waitingRequestsMax: 100,
          log: testLog,
          replyKey,
        }),
    );
    await Promise.all(clients.map((c) => c.start()));
    try {
      expect(clients.map((c) => c.replyRoute)).toEqual([
        { key: keyA, partitions: [partitionOfKey(keyA, partitions)] },
        { key: keyB, partitions: [partitionOfKey(keyB, partitions)] },
      ]);
      const schema = createCommandSchema({ amountMinorMax: stack.config.limits.amountMinorMax });
      const run = uniqueSuffix();
      // Users spread over every command partition, so the replies come from every lane.
      const requests = clients.flatMap((c, k) =>
        Array.from({ length: 24 }, (_, i) =>
          c.request(schema.parse({ id: `${run}-${k}-${i}`, type: 'deposit', user_id: 7_200 + i, amount: '1.00' }), {
            timeoutMs: 10_000,
          }),
        ),
      );
      const replies = await Promise.all(requests);
      // A reply keyed to the wrong partition reaches nobody: it shows up here as a missing one.
      expect(replies.filter((r) => r === null).length).toBe(0);
      expect(new Set(replies.map((r) => r?.status))).toEqual(new Set(['applied']));
    } finally {
      await Promise.all(clients.map((c) => c.stop()));
    }
  });
});
