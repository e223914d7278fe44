/**
 * What a processed chunk sends back to Kafka: derived commands (settles, first), replies (to the reply topic or a command's own
 * `reply_to`) and dead letters. The core topics must accept them or the chunk is retried; a
 * `reply_to` topic that does not exist is the producer's mistake, logged and skipped, so it
 * can never block a partition.
 */
import { commandKey, serializeCommand, type Command } from '../commands/schema.ts';
import type { CommandReply } from '../ledger/outcome.ts';
import type { Logger } from '../log.ts';
import type { KafkaMessage, Producer } from '../kafka/client.ts';
import type { DeadLetterCode } from './parse-message.ts';

export interface OutgoingMessage {
  readonly key: string | Buffer | null;
  readonly value: string | Buffer | null;
  readonly headers?: Record<string, string | Buffer>;
}

export class Outbox {
  private readonly byTopic = new Map<string, OutgoingMessage[]>();
  private readonly derived: OutgoingMessage[] = [];
  constructor(
    private readonly defaultReplyTopic: string,
    private readonly commandTopic: string,
  ) {}

  /**
   * A command the consumer derives (a transfer's settle), for the command topic. It is sent
   * and acknowledged before any reply, so a caller who has seen the transfer's reply and then
   * acts for the recipient lands behind the settle on the recipient's partition.
   */
  derive(command: Command): void {
    this.derived.push({ key: commandKey(command), value: serializeCommand(command) });
  }

  reply(reply: CommandReply, replyTo: string | undefined | null): void {
    this.add(replyTo ?? this.defaultReplyTopic, { key: reply.command_id, value: JSON.stringify(reply) });
  }

  add(topic: string, message: OutgoingMessage): void {
    const list = this.byTopic.get(topic);
    if (list) list.push(message);
    else this.byTopic.set(topic, [message]);
  }

  get size(): number {
    let n = this.derived.length;
    for (const list of this.byTopic.values()) n += list.length;
    return n;
  }

  /** Sends everything; throws if a core topic fails, so the caller does not commit offsets. */
  async flush(producer: Producer, coreTopics: ReadonlySet<string>, log: Logger): Promise<{ skipped: number }> {
    if (this.derived.length > 0) {
      await producer.send({ topic: this.commandTopic, acks: -1, messages: [...this.derived] });
      this.derived.length = 0;
    }
    const core = [...this.byTopic].filter(([topic]) => coreTopics.has(topic));
    const other = [...this.byTopic].filter(([topic]) => !coreTopics.has(topic));
    if (core.length > 0) {
      await producer.sendBatch({ acks: -1, topicMessages: core.map(([topic, messages]) => ({ topic, messages: [...messages] })) });
    }
    let skipped = 0;
    for (const [topic, messages] of other) {
      try {
        await producer.send({ topic, acks: -1, messages: [...messages] });
      } catch (error) {
        if (!isUnknownTopic(error)) throw error;
        skipped += messages.length;
        log.warn({ topic, replies: messages.length }, 'reply_to names a topic that does not exist; replies skipped (poll the command instead)');
      }
    }
    this.byTopic.clear();
    return { skipped };
  }
}

function isUnknownTopic(error: unknown): boolean {
  const text = `${(error as { type?: string }).type ?? ''} ${(error as Error).message ?? ''}`;
  return /UNKNOWN_TOPIC|does not host this topic-partition|TOPIC_AUTHORIZATION_FAILED/i.test(text);
}

/** The dead letter of a message: its original key, value and headers, plus why and where from. */
export function deadLetterOf(
  message: KafkaMessage,
  source: { topic: string; partition: number },
  reason: { code: DeadLetterCode; message: string },
): OutgoingMessage {
  const headers: Record<string, string | Buffer> = {};
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    if (typeof value === 'string' || Buffer.isBuffer(value)) headers[name] = value;
  }
  return {
    key: message.key,
    value: message.value,
    headers: {
      ...headers,
      'x-error-code': reason.code,
      'x-error-message': reason.message.slice(0, 1_000),
      'x-source-topic': source.topic,
      'x-source-partition': String(source.partition),
      'x-source-offset': message.offset,
      'x-dead-lettered-at': new Date().toISOString(),
    },
  };
}
