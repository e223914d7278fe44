/**
 * The outbox's way into Kafka. The service's own topics go through one producer. Topics
 * that commands name go through a second, disposable producer: kafkajs keeps every topic it
 * ever sent to in its metadata requests, and once such a topic is deleted every later request of
 * that producer fails. Keeping those topics off the core producer means a producer's mistake can
 * never stop the consumer from publishing settles, replies and dead letters.
 *
 * Sends to the service's own topics go through a coalescer: the partitions whose chunks are
 * ready together share one produce request (up to `batchBytesMax`), and each partition's
 * messages keep their order within it.
 */
import { PRODUCER_OPTIONS, type Kafka, type Producer } from '../kafka/client.ts';
import { TopicDirectory } from '../kafka/topic-directory.ts';
import type { Logger } from '../log.ts';
import { Coalescer } from './coalescer.ts';
import { messageBytes } from './dead-letter.ts';
import type { OutboxSink, OutgoingMessage, TopicMessages } from './outbox.ts';

/** The most outbox sends (of different partitions' chunks) merged into one produce request. */
export const SENDS_MERGED_MAX = 64;

export class KafkaOutboxSink implements OutboxSink {
  private readonly core: Producer;
  /** Connecting or connected; shared by the partitions flushing at once. */
  private targets: Promise<Producer> | null = null;
  private readonly directory: TopicDirectory;
  readonly coreSends: Coalescer<readonly TopicMessages[]>;

  constructor(
    private readonly kafka: Kafka,
    private readonly log: Logger,
    /** The most bytes in one produce request; below the broker's message.max.bytes. */
    batchBytesMax: number,
  ) {
    this.core = kafka.producer(PRODUCER_OPTIONS);
    this.directory = new TopicDirectory(kafka);
    this.coreSends = new Coalescer({
      run: (batches) => this.produce(batches.flat()),
      itemsMax: SENDS_MERGED_MAX,
      weight: (batch) => batch.reduce((sum, t) => sum + t.messages.reduce((n, m) => n + messageBytes(m), 0), 0),
      weightMax: batchBytesMax,
      isolateFailures: true,
    });
  }

  async connect(): Promise<void> {
    await this.core.connect();
  }

  async disconnect(): Promise<void> {
    await this.core.disconnect();
    await this.discardTargetProducer();
    await this.directory.close();
  }

  async sendCore(batch: readonly TopicMessages[]): Promise<void> {
    if (batch.some((t) => t.messages.length > 0)) await this.coreSends.submit(batch);
  }

  /** One produce request; a topic named twice gets its messages in the order given. */
  private async produce(parts: readonly TopicMessages[]): Promise<void> {
    const byTopic = new Map<string, OutgoingMessage[]>();
    for (const { topic, messages } of parts) {
      const list = byTopic.get(topic);
      if (list) list.push(...messages);
      else byTopic.set(topic, [...messages]);
    }
    const topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    if (topicMessages.length > 0) await this.core.sendBatch({ acks: -1, topicMessages });
  }

  async sendToReplyTarget(topic: string, messages: readonly OutgoingMessage[]): Promise<'sent' | 'missing' | 'failed'> {
    if (!(await this.directory.exists(topic))) {
      this.log.warn(
        { topic, replies: messages.length },
        'reply_to names a topic that does not exist; replies skipped (poll the command instead)',
      );
      return 'missing';
    }
    try {
      await (await this.targetProducer()).send({ topic, acks: -1, messages: [...messages] });
      return 'sent';
    } catch (error) {
      this.log.warn(
        { err: error, topic, replies: messages.length },
        'replies to a reply_to topic could not be delivered; skipped',
      );
      this.directory.forget();
      await this.discardTargetProducer();
      return 'failed';
    }
  }

  private targetProducer(): Promise<Producer> {
    this.targets ??= (async () => {
      // Few retries: a topic that refuses us is skipped, not waited for.
      const producer = this.kafka.producer({
        allowAutoTopicCreation: false,
        retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 500 },
      });
      await producer.connect();
      return producer;
    })();
    return this.targets;
  }

  private async discardTargetProducer(): Promise<void> {
    const producer = this.targets;
    this.targets = null;
    await producer?.then((p) => p.disconnect()).catch(() => {});
  }
}
