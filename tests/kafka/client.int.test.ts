import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createKafka,
  describeCluster,
  ensureTopics,
  javaCompatiblePartitioner,
  kafkaRequestsSent,
  PRODUCER_OPTIONS,
} from '../../src/kafka/client.ts';
import { createTestDatabase, eventually, testConfig, testKafka, testLog, type TestDatabase } from '../helpers/stack.ts';

describe('the Kafka adapter against the real broker', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('describes the cluster', async () => {
    const kafka = testKafka(testConfig(db));
    const cluster = await describeCluster(kafka, 5_000);
    expect(cluster.brokers).toBeGreaterThanOrEqual(1);
  });

  it('creates missing topics with the partition count asked for, and only once', async () => {
    const config = testConfig(db);
    const kafka = testKafka(config);
    const specs = [{ topic: config.topics.commands, partitions: 5 }];
    expect(await ensureTopics(kafka, specs)).toEqual([config.topics.commands]);
    expect(await ensureTopics(kafka, specs)).toEqual([]);
    const admin = kafka.admin();
    await admin.connect();
    const metadata = await admin.fetchTopicMetadata({ topics: [config.topics.commands] });
    await admin.disconnect();
    expect(metadata.topics[0]?.partitions).toHaveLength(5);
  });

  it('counts the requests every client sends, by Kafka API: one send is one Produce request', async () => {
    const config = testConfig(db);
    const kafka = testKafka(config);
    await ensureTopics(kafka, [{ topic: config.topics.commands, partitions: 1 }]);
    const producer = kafka.producer(PRODUCER_OPTIONS);
    await producer.connect();
    try {
      const before = kafkaRequestsSent.get('Produce') ?? 0;
      await producer.send({
        topic: config.topics.commands,
        acks: -1,
        messages: [
          { key: '1', value: 'a' },
          { key: '1', value: 'b' },
        ],
      });
      expect((kafkaRequestsSent.get('Produce') ?? 0) - before).toBe(1);
      expect(kafkaRequestsSent.get('Metadata')).toBeGreaterThan(0);
    } finally {
      await producer.disconnect();
    }
  });

  it('produces to and consumes from the broker, keeping a key on one partition', async () => {
    const config = testConfig(db);
    const kafka = testKafka(config);
    await ensureTopics(kafka, [{ topic: config.topics.commands, partitions: 3 }]);
    const producer = kafka.producer({ createPartitioner: javaCompatiblePartitioner, idempotent: true });
    await producer.connect();
    const messages = Array.from({ length: 20 }, (_, i) => ({ key: 'user-7', value: `m${i}` }));
    const acks = await producer.send({ topic: config.topics.commands, acks: -1, messages });
    await producer.disconnect();
    expect(new Set(acks.map((ack) => ack.partition)).size).toBe(1);

    const consumer = kafka.consumer({ groupId: config.consumer.group });
    const received: string[] = [];
    await consumer.connect();
    await consumer.subscribe({ topic: config.topics.commands, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void received.push(String(message.value)) });
    await eventually(async () => (received.length === 20 ? true : undefined), 30_000, 'all 20 messages');
    await consumer.disconnect();
    expect(received).toEqual(messages.map((m) => m.value));
  });

  it('fails describeCluster within its time limit when no broker answers', async () => {
    const kafka = createKafka({ brokers: ['127.0.0.1:1'], clientId: 'nobody', log: testLog, retriesMax: 0 });
    const started = Date.now();
    await expect(describeCluster(kafka, 2_000)).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

describe('topic settings', () => {
  it('creates the topics with the configured retention, reports settings that drifted, and fixes them', async () => {
    const { checkTopics } = await import('../../src/kafka/client.ts');
    const { topicSpecs } = await import('../../src/stack/infrastructure.ts');
    const db = await createTestDatabase();
    try {
      const config = testConfig(db);
      const kafka = testKafka(config);
      const specs = topicSpecs(config);
      await ensureTopics(kafka, specs);
      expect(await checkTopics(kafka, specs, false)).toEqual([]);
      const admin = kafka.admin();
      await admin.connect();
      const described = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: 2, name: config.topics.commands }],
      });
      expect(described.resources[0]!.configEntries.find((e) => e.configName === 'retention.ms')?.configValue).toBe(
        '-1',
      );
      // Someone shortens the command log's retention: rebuilds would quietly lose history.
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          { type: 2, name: config.topics.commands, configEntries: [{ name: 'retention.ms', value: '604800000' }] },
        ],
      });
      await admin.disconnect();
      expect(await checkTopics(kafka, specs, false)).toEqual([
        { topic: config.topics.commands, setting: 'retention.ms', expected: '-1', actual: '604800000' },
      ]);
      expect(await checkTopics(kafka, specs, true)).toHaveLength(1);
      expect(await checkTopics(kafka, specs, false)).toEqual([]);
    } finally {
      await db.drop();
    }
  });
});
