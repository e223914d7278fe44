/**
 * The outbox's way into Kafka. The service's own topics go through one producer. Topics
 * that commands name go through a second, disposable producer: kafkajs keeps every topic it
 * ever sent to in its metadata requests, and once such a topic is deleted every later request of
 * that producer fails. Keeping those topics off the core producer means a producer's mistake can
 * never stop the consumer from publishing settles, replies and dead letters.
 */
import { PRODUCER_OPTIONS, type Kafka, type Producer } from '../kafka/client.ts';
import { TopicDirectory } from '../kafka/topic-directory.ts';
import type { Logger } from '../log.ts';
import type { OutboxSink, OutgoingMessage, TopicMessages } from './outbox.ts';

export class KafkaOutboxSink implements OutboxSink {
  private readonly core: Producer;
  /** Connecting or connected; shared by the partitions flushing at once. */
  private targets: Promise<Producer> | null = null;
  private readonly directory: TopicDirectory;

  constructor(
    private readonly kafka: Kafka,
    private readonly log: Logger,
  ) {
    this.core = kafka.producer(PRODUCER_OPTIONS);
    this.directory = new TopicDirectory(kafka);
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
    const topicMessages = batch
      .filter((t) => t.messages.length > 0)
      .map((t) => ({ topic: t.topic, messages: [...t.messages] }));
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
