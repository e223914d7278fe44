/**
 * `npm run bench:kafka-clients`: kafkajs (what the service uses) against @platformatic/kafka 1.34
 * (the maintained alternative that still runs on Node 20), on one local broker, in one run.
 * Each client does, on topics of its own (6 partitions, 200-byte values, acks=all, not
 * idempotent, as the service's producers):
 *   produce-one   BENCH_KAFKA_SINGLE_SENDS (500) sends of one message, one at a time: latency;
 *   produce       4 concurrent senders of 100-message batches up to BENCH_KAFKA_MESSAGES (100,000);
 *   consume       a new group reads those messages from the start;
 *   hop           BENCH_KAFKA_HOPS (300) messages one at a time: from send to a running consumer.
 * The clients run in the order A B B A, so neither profits alone from a broker that warmed up;
 * each figure is reported for both rounds. Prints a table and writes
 * bench/results/kafka-clients-<time>.json.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import {
  Consumer as PlatformaticConsumer,
  Producer as PlatformaticProducer,
  compatibilityPartitioner,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { createLogger } from '../src/log.ts';
import { startLocalKafka } from '../src/stack/local-kafka.ts';

const settings = {
  messages: Number(process.env.BENCH_KAFKA_MESSAGES ?? 100_000),
  singleSends: Number(process.env.BENCH_KAFKA_SINGLE_SENDS ?? 500),
  hops: Number(process.env.BENCH_KAFKA_HOPS ?? 300),
  valueBytes: 200,
  partitions: 6,
  /** A consume pass that has not read every message after this long fails the run. */
  consumeWaitMs: 120_000,
};
const value = 'x'.repeat(settings.valueBytes);

interface ClientFigures {
  produceOneP50Ms: number;
  produceOneP90Ms: number;
  producePerSecond: number;
  consumePerSecond: number;
  hopP50Ms: number;
  hopP90Ms: number;
}

/** What one client must offer the bench; each round gets topics of its own. */
interface ClientUnderTest {
  sendOne(topic: string, key: string): Promise<void>;
  sendBatch(topic: string, keys: readonly string[]): Promise<void>;
  /** Starts a new group on `topic` from the start; `onMessages` gets each fetched batch's size. */
  subscribe(topic: string, group: string, onMessages: (count: number) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

function kafkajsClient(brokers: string[]): ClientUnderTest {
  const kafka = new Kafka({ brokers, clientId: 'bench-kafkajs', logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: false, maxInFlightRequests: 5 });
  const connected = producer.connect();
  return {
    async sendOne(topic, key) {
      await connected;
      await producer.send({ topic, acks: -1, messages: [{ key, value }] });
    },
    async sendBatch(topic, keys) {
      await connected;
      await producer.send({ topic, acks: -1, messages: keys.map((key) => ({ key, value })) });
    },
    async subscribe(topic, group, onMessages) {
      const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 50 });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachBatch: async ({ batch }) => onMessages(batch.messages.length) });
      return () => consumer.disconnect();
    },
    close: () => producer.disconnect(),
  };
}

function platformaticClient(brokers: string[]): ClientUnderTest {
  const producer = new PlatformaticProducer({
    clientId: 'bench-platformatic',
    bootstrapBrokers: brokers,
    serializers: stringSerializers,
    acks: -1,
    idempotent: false,
    // murmur2, as kafkajs and the Java client, so keys land on the same partitions.
    partitioner: compatibilityPartitioner as never,
  });
  return {
    async sendOne(topic, key) {
      await producer.send({ messages: [{ topic, key, value }] });
    },
    async sendBatch(topic, keys) {
      await producer.send({ messages: keys.map((key) => ({ topic, key, value })) });
    },
    async subscribe(topic, group, onMessages) {
      const consumer = new PlatformaticConsumer({
        groupId: group,
        clientId: `bench-platformatic-${group}`,
        bootstrapBrokers: brokers,
        deserializers: stringDeserializers,
        maxWaitTime: 50,
        autocommit: false,
      });
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest' });
      stream.on('data', () => onMessages(1));
      return async () => {
        await stream.close();
        await consumer.close();
      };
    },
    close: () => producer.close(),
  };
}

async function measure(client: ClientUnderTest, round: string): Promise<ClientFigures> {
  const single: number[] = [];
  for (let i = 0; i < settings.singleSends; i += 1) {
    const started = performance.now();
    await client.sendOne(`${round}-load`, String(i));
    single.push(performance.now() - started);
  }
  const producer = await timed(async () => {
    let sent = 0;
    const batchKeys = Array.from({ length: 100 }, (_, k) => String(k));
    const sender = async () => {
      while (sent < settings.messages) {
        sent += batchKeys.length;
        await client.sendBatch(`${round}-load`, batchKeys);
      }
    };
    await Promise.all([sender(), sender(), sender(), sender()]);
    return sent;
  });
  const total = settings.singleSends + producer.result;
  const consumed = await timed(() => consumeAll(client, `${round}-load`, `${round}-readers`, total));
  const hops = await hopLatencies(client, round);
  return {
    produceOneP50Ms: quantile(single, 0.5),
    produceOneP90Ms: quantile(single, 0.9),
    producePerSecond: Math.round(producer.result / producer.seconds),
    consumePerSecond: Math.round(consumed.result / consumed.seconds),
    hopP50Ms: quantile(hops, 0.5),
    hopP90Ms: quantile(hops, 0.9),
  };
}

async function consumeAll(client: ClientUnderTest, topic: string, group: string, expected: number) {
  let read = 0;
  let finished!: () => void;
  const all = new Promise<void>((resolve) => (finished = resolve));
  const stop = await client.subscribe(topic, group, (count) => {
    read += count;
    if (read >= expected) finished();
  });
  const timeout = setTimeout(finished, settings.consumeWaitMs);
  await all;
  clearTimeout(timeout);
  await stop();
  if (read < expected) throw new Error(`read ${read} of ${expected} messages in ${settings.consumeWaitMs} ms`);
  return read;
}

async function hopLatencies(client: ClientUnderTest, round: string): Promise<number[]> {
  let arrived: (() => void) | null = null;
  const stop = await client.subscribe(`${round}-hop`, `${round}-hop-readers`, () => arrived?.());
  // A first message, waited for, so the group has joined before the clock starts.
  await new Promise<void>((resolve) => {
    arrived = resolve;
    void client.sendOne(`${round}-hop`, 'warm-up');
  });
  const hops: number[] = [];
  for (let i = 0; i < settings.hops; i += 1) {
    const started = performance.now();
    const received = new Promise<void>((resolve) => (arrived = resolve));
    await client.sendOne(`${round}-hop`, String(i));
    await received;
    hops.push(performance.now() - started);
  }
  await stop();
  return hops;
}

async function timed<T>(work: () => Promise<T>): Promise<{ result: T; seconds: number }> {
  const started = performance.now();
  const result = await work();
  return { result, seconds: (performance.now() - started) / 1000 };
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!.toFixed(2));
}

async function main() {
  const log = createLogger({ level: process.env.LOG_LEVEL ?? 'warn', name: 'bench' });
  const broker = await startLocalKafka({
    dir: '.local/kafka-bench',
    port: 49092,
    controllerPort: 49093,
    heapMb: 1024,
    readyWaitMs: 120_000,
    fresh: true,
    log,
  });
  const brokers = [...broker.brokers];
  const rounds: Array<{ client: string; figures: ClientFigures }> = [];
  try {
    const admin = new Kafka({ brokers, clientId: 'bench-admin', logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    const order = ['kafkajs', 'platformatic', 'platformatic', 'kafkajs'] as const;
    await admin.createTopics({
      topics: order.flatMap((_, i) =>
        [`r${i}-load`, `r${i}-hop`].map((topic) => ({ topic, numPartitions: settings.partitions })),
      ),
    });
    await admin.disconnect();
    for (const [i, name] of order.entries()) {
      const client = name === 'kafkajs' ? kafkajsClient(brokers) : platformaticClient(brokers);
      rounds.push({ client: name, figures: await measure(client, `r${i}`) });
      await client.close();
    }
  } finally {
    await broker.stop();
  }
  await report(rounds);
}

async function report(rounds: ReadonlyArray<{ client: string; figures: ClientFigures }>) {
  const machine = { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version };
  console.log('\nround  client         one send p50/p90 ms   produce msg/s   consume msg/s   hop p50/p90 ms');
  for (const [i, { client, figures: f }] of rounds.entries())
    console.log(
      `${String(i + 1).padStart(5)}  ${client.padEnd(13)}  ${`${f.produceOneP50Ms}/${f.produceOneP90Ms}`.padStart(19)}   ${String(f.producePerSecond).padStart(13)}   ${String(f.consumePerSecond).padStart(13)}   ${`${f.hopP50Ms}/${f.hopP90Ms}`.padStart(14)}`,
    );
  console.log(`machine: ${machine.cpus} cores, ${machine.cpuModel}`);
  const at = new Date().toISOString();
  await mkdir('bench/results', { recursive: true });
  const file = `bench/results/kafka-clients-${at.replaceAll(':', '-')}.json`;
  await writeFile(file, JSON.stringify({ at, machine, settings, rounds }, null, 2));
  console.log(`written: ${file}`);
}

await main();
