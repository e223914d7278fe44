/**
 * The consumer merges the sends and offset commits of partitions that finish together, but a
 * partition's offset is committed only after its own sends were acknowledged. Here the broker
 * really refuses one partition's sends (the settle of a transfer: the command topic's
 * max.message.bytes is set below any record batch) while another partition's deposits, whose
 * replies and events go to other topics, are accepted. The accepted partition must commit; the
 * refused one must not commit past its transfer until the settle is in.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { createCommandWorker } from '../../src/consumer/worker.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { partitionOfKey } from '../../src/kafka/partition.ts';
import { balancesOf, publish } from '../helpers/commands.ts';
import {
  createTestDatabase,
  createTestTopics,
  eventually,
  testConfig,
  testKafka,
  testLog,
  uniqueSuffix,
  type TestDatabase,
} from '../helpers/stack.ts';

describe('merged commits', () => {
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db, { consumer: { partitionPauseMs: 200 } });
    kafka = testKafka(config);
    await createTestTopics(kafka, config);
  });
  afterAll(async () => {
    await setCommandTopicMessageBytes(null);
    await db?.drop();
  });

  async function setCommandTopicMessageBytes(bytes: number | null): Promise<void> {
    if (!kafka) return;
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: 2,
            name: config.topics.commands,
            configEntries: [{ name: 'max.message.bytes', value: String(bytes ?? 1_048_588) }],
          },
        ],
      });
    } finally {
      await admin.disconnect();
    }
  }

  /** The consumer group's committed offset of each command partition (-1: none yet). */
  async function committed(): Promise<Map<number, bigint>> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const [topic] = await admin.fetchOffsets({ groupId: config.consumer.group, topics: [config.topics.commands] });
      return new Map(topic!.partitions.map((p) => [p.partition, BigInt(p.offset)]));
    } finally {
      await admin.disconnect();
    }
  }

  async function highWatermarks(): Promise<Map<number, bigint>> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(config.topics.commands);
      return new Map(offsets.map((p) => [p.partition, BigInt(p.high)]));
    } finally {
      await admin.disconnect();
    }
  }

  it('commits the partition whose sends were accepted, and never the one whose settle was refused', async () => {
    const run = uniqueSuffix();
    const partitions = config.topics.commandPartitions;
    const sender = 7_100;
    const senderPartition = partitionOfKey(String(sender), partitions);
    const depositor = firstUserOnAnotherPartition(sender, partitions);
    const depositorPartition = partitionOfKey(String(depositor), partitions);
    // A first consumer writes each partition's limits record (to the command topic, which is
    // about to refuse everything) and opens both accounts.
    const first = createCommandWorker({ config, kafka, pool: db.pool, log: testLog });
    await first.start();
    await publish(kafka, config.topics.commands, [
      { id: `${run}-open-s`, type: 'deposit', user_id: sender, amount: '0.01' },
      { id: `${run}-open-d`, type: 'deposit', user_id: depositor, amount: '0.01' },
    ]);
    await eventually(
      async () =>
        (await committed()).get(senderPartition)! > 0n && (await committed()).get(depositorPartition)! > 0n
          ? true
          : undefined,
      30_000,
      'the first consumer committed both partitions',
    );
    await first.stop();
    const ends = await highWatermarks();
    // The sender's partition gets the funding deposit, then the transfer.
    const transferOffset = ends.get(senderPartition)! + 1n;
    // Published before the broker refuses anything; no consumer is running now.
    await publish(kafka, config.topics.commands, [
      { id: `${run}-fund`, type: 'deposit', user_id: sender, amount: '10.00' },
      { id: `${run}-tr`, type: 'transfer', user_id: sender, recipient_id: 7_999, amount: '4.00' },
      ...Array.from({ length: 20 }, (_, i) => ({
        id: `${run}-dep-${i}`,
        type: 'deposit' as const,
        user_id: depositor,
        amount: '1.00',
      })),
    ]);
    await setCommandTopicMessageBytes(16);
    const worker = createCommandWorker({ config, kafka, pool: db.pool, log: testLog });
    await worker.start();
    try {
      await eventually(
        async () => ((await balancesOf(db.pool, depositor)).available === 2_001n ? true : undefined),
        30_000,
        "the depositor's 20 deposits applied",
      );
      await eventually(
        async () =>
          (await committed()).get(depositorPartition)! >= ends.get(depositorPartition)! + 20n ? true : undefined,
        30_000,
        "the depositor's partition committed",
      );
      // The transfer is in PostgreSQL, but its settle is refused: its partition stays uncommitted
      // past the transfer (committing beyond its offset would skip it on a restart).
      const seen: bigint[] = [];
      for (let i = 0; i < 10; i += 1) {
        seen.push((await committed()).get(senderPartition)!);
        await new Promise((resolve) => setTimeout(resolve, 150));
      }
      expect(seen.filter((offset) => offset > transferOffset)).toEqual([]);
      expect(worker.stats.pauses).toBeGreaterThan(0);

      await setCommandTopicMessageBytes(null);
      await eventually(
        async () => ((await balancesOf(db.pool, 7_999)).available === 400n ? true : undefined),
        30_000,
        'the settle applied once the broker accepts it',
      );
      await eventually(
        async () => ((await committed()).get(senderPartition)! > transferOffset ? true : undefined),
        30_000,
        "the sender's partition committed past the transfer",
      );
    } finally {
      await worker.stop();
    }
  });
});

function firstUserOnAnotherPartition(user: number, partitions: number): number {
  const partition = partitionOfKey(String(user), partitions);
  for (let other = user + 1; ; other += 1) if (partitionOfKey(String(other), partitions) !== partition) return other;
}
