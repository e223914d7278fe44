/**
 * Why PRODUCER_OPTIONS turns idempotence off, against the real broker. A produce request is
 * written by the broker but its answer never reaches the client (the connection drops first, as
 * in a broker restart), so the send fails. kafkajs's idempotent producer then rolls the
 * partition's sequence number back, and the next message reuses it: the broker acknowledges it
 * as a repeat of the written batch and drops it. The service's producers must keep it.
 */
import net from 'node:net';
import { Kafka, logLevel, type ISocketFactory, type ProducerConfig } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics, PRODUCER_OPTIONS } from '../../src/kafka/client.ts';
import { createTestDatabase, testConfig, type TestDatabase } from '../helpers/stack.ts';

/** Kafka's request header starts with the size (int32), then the API key (int16); Produce is 0. */
const PRODUCE_API_KEY = 0;

/**
 * Sockets that, for the next `count` produce requests, pass each to the broker and then close
 * the connection instead of delivering the broker's answer.
 */
function answerLosingSockets(): { factory: ISocketFactory; loseProduceAnswers: (count: number) => void } {
  let armed = 0;
  const factory: ISocketFactory = ({ host, port, onConnect }) => {
    const socket = net.connect({ host, port }, onConnect);
    let awaitingLostAnswer = false;
    const write = socket.write.bind(socket) as (chunk: unknown, ...rest: unknown[]) => boolean;
    socket.write = ((chunk: unknown, ...rest: unknown[]) => {
      if (armed > 0 && Buffer.isBuffer(chunk) && chunk.length >= 6 && chunk.readInt16BE(4) === PRODUCE_API_KEY) {
        armed -= 1;
        awaitingLostAnswer = true;
      }
      return write(chunk, ...rest);
    }) as typeof socket.write;
    const emit = socket.emit.bind(socket) as (event: string, ...args: unknown[]) => boolean;
    socket.emit = ((event: string, ...args: unknown[]) => {
      if (event === 'data' && awaitingLostAnswer) {
        socket.destroy(new Error('connection lost before the produce answer (planted)'));
        return true;
      }
      return emit(event, ...args);
    }) as typeof socket.emit;
    return socket;
  };
  return { factory, loseProduceAnswers: (count) => void (armed = count) };
}

describe('producers when an answer is lost after the broker wrote the batch', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  /**
   * Sends W, then A with its answer lost on both tries (the send fails), then B; returns whether
   * A's send failed and how many messages the partition holds.
   */
  async function messagesKept(options: ProducerConfig): Promise<{ failedA: boolean; kept: number }> {
    const config = testConfig(db);
    const { factory, loseProduceAnswers } = answerLosingSockets();
    const kafka = new Kafka({
      clientId: 'lost-answer',
      brokers: [...(config.kafka.brokers ?? [])],
      socketFactory: factory,
      logLevel: logLevel.NOTHING,
    });
    const topic = config.topics.commands;
    await ensureTopics(kafka, [{ topic, partitions: 1 }]);
    const producer = kafka.producer({ ...options, retry: { retries: 1, initialRetryTime: 50 } });
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: [{ key: 'u', value: 'W' }] });
      loseProduceAnswers(2);
      const failedA = await producer
        .send({ topic, acks: -1, messages: [{ key: 'u', value: 'A' }] })
        .then(() => false)
        .catch(() => true);
      await producer.send({ topic, acks: -1, messages: [{ key: 'u', value: 'B' }] });
      const admin = kafka.admin();
      await admin.connect();
      const [offsets] = await admin.fetchTopicOffsets(topic);
      await admin.disconnect();
      return { failedA, kept: Number(offsets!.high) };
    } finally {
      await producer.disconnect();
    }
  }

  it('keeps every acknowledged message with PRODUCER_OPTIONS: W, A twice (its retry) and B', async () => {
    expect(await messagesKept(PRODUCER_OPTIONS)).toEqual({ failedA: true, kept: 4 });
  });

  it("loses the acknowledged B with kafkajs's idempotent producer (the fault PRODUCER_OPTIONS avoids)", async () => {
    // W and A only: B took A's rolled-back sequence number, and the broker dropped it as A's repeat.
    expect(await messagesKept({ ...PRODUCER_OPTIONS, idempotent: true })).toEqual({ failedA: true, kept: 2 });
  });
});
