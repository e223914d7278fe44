/**
 * What a processed chunk sends back to Kafka, in this order:
 *   1. derived commands (the settles of applied transfers), to the command topic;
 *   2. replies to the reply topic, and dead letters: the service's own topics;
 *   3. replies to the topics commands named in `reply_to`.
 * 1 and 2 must be acknowledged or the chunk's offsets are not committed (the chunk is then
 * processed again, as duplicates). 3 is best effort: a named topic that does not exist, or
 * refuses us, is the producer's problem, and it is counted and logged, never allowed to hold up
 * the partition. Every send is bounded in bytes, below the broker's message size limit.
 */
import { commandKey, serializeCommand } from '../commands/schema.ts';
import { INTERNAL_PROOF_HEADER, type InternalCommand } from '../commands/internal-proof.ts';
import type { KafkaMessage } from '../kafka/client.ts';
import type { CommandReply } from '../ledger/outcome.ts';
import { deadLetterOf, messageBytes, type DeadLetterReason, type OutgoingMessage } from './dead-letter.ts';

export type { OutgoingMessage } from './dead-letter.ts';

/** An internal command as published to the command topic: keyed by its user, with its proof. */
export function internalCommandMessage(command: InternalCommand, proof: string): OutgoingMessage {
  return { key: commandKey(command), value: serializeCommand(command), headers: { [INTERNAL_PROOF_HEADER]: proof } };
}

export interface OutboxTopics {
  readonly commands: string;
  readonly replies: string;
  readonly deadLetters: string;
  readonly events: string;
}

export interface TopicMessages {
  readonly topic: string;
  readonly messages: readonly OutgoingMessage[];
}

/** Where an outbox is flushed: Kafka in the consumer, a fake in unit tests. */
export interface OutboxSink {
  /** Sends to the service's own topics and waits for every acknowledgement; throws otherwise. */
  sendCore(batch: readonly TopicMessages[]): Promise<void>;
  /** Sends to a topic a command named; says what happened instead of throwing. */
  sendToReplyTarget(topic: string, messages: readonly OutgoingMessage[]): Promise<'sent' | 'missing' | 'failed'>;
}

export interface FlushReport {
  /** Replies that could not be delivered to the topic their command named. */
  readonly undeliverable: number;
}

export class Outbox {
  private readonly derived: OutgoingMessage[] = [];
  private settles = 0;
  private readonly replies: OutgoingMessage[] = [];
  private readonly deadLetters: OutgoingMessage[] = [];
  private readonly events: OutgoingMessage[] = [];
  private readonly toTargets = new Map<string, OutgoingMessage[]>();

  constructor(
    private readonly topics: OutboxTopics,
    /** The most bytes in one send; below the broker's message.max.bytes. */
    private readonly batchBytesMax: number,
  ) {}

  /**
   * A command the consumer derives (a transfer's settle), signed. It is sent and acknowledged
   * before any reply, so a caller who has seen the transfer's reply and then acts for the
   * recipient lands behind the settle on the recipient's partition.
   */
  derive(command: InternalCommand, proof: string): void {
    this.derived.push(internalCommandMessage(command, proof));
    this.settles += 1;
  }

  /** How many settles (derived commands) the outbox holds. */
  get settleCount(): number {
    return this.settles;
  }

  /** Another message the consumer makes for the command topic (a limits record), sent with the settles. */
  derivedMessage(message: OutgoingMessage): void {
    this.derived.push(message);
  }

  /**
   * A reply, to the default reply topic or to the allowed topic the command named, keyed by the
   * reply key its message asked for (see REPLY_KEY_HEADER), else by its command id.
   */
  reply(reply: CommandReply, replyTo: string | null | undefined, replyKey: string | null = null): void {
    const message = { key: replyKey ?? reply.command_id, value: JSON.stringify(reply) };
    if (!replyTo || replyTo === this.topics.replies) {
      this.replies.push(message);
      return;
    }
    const list = this.toTargets.get(replyTo);
    if (list) list.push(message);
    else this.toTargets.set(replyTo, [message]);
  }

  /** A balance event, keyed by its user; sent with the replies, before the offsets are committed. */
  event(userId: number, payload: string): void {
    this.events.push({ key: String(userId), value: payload });
  }

  deadLetter(message: KafkaMessage, source: { topic: string; partition: number }, reason: DeadLetterReason): void {
    this.deadLetters.push(deadLetterOf(message, source, reason));
  }

  get size(): number {
    let n = this.derived.length + this.replies.length + this.deadLetters.length + this.events.length;
    for (const list of this.toTargets.values()) n += list.length;
    return n;
  }

  get deadLetterCount(): number {
    return this.deadLetters.length;
  }

  /**
   * `heartbeat` keeps the consumer's group membership alive between the sends of a long flush.
   * `derivedSent` runs once the derived commands are acknowledged and before any reply is sent,
   * so what it records (settles published) is visible to whoever has seen a reply.
   */
  async flush(
    sink: OutboxSink,
    heartbeat: () => Promise<void> = async () => {},
    derivedSent: () => Promise<void> = async () => {},
  ): Promise<FlushReport> {
    for (const batch of byteBounded([{ topic: this.topics.commands, messages: this.derived }], this.batchBytesMax)) {
      await sink.sendCore(batch);
      await heartbeat();
    }
    await derivedSent();
    const core = [
      { topic: this.topics.replies, messages: this.replies },
      { topic: this.topics.deadLetters, messages: this.deadLetters },
      { topic: this.topics.events, messages: this.events },
    ];
    for (const batch of byteBounded(core, this.batchBytesMax)) {
      await sink.sendCore(batch);
      await heartbeat();
    }
    let undeliverable = 0;
    for (const [topic, messages] of this.toTargets) {
      for (const [batch] of byteBounded([{ topic, messages }], this.batchBytesMax)) {
        const outcome = await sink.sendToReplyTarget(topic, batch!.messages);
        if (outcome !== 'sent') undeliverable += batch!.messages.length;
        await heartbeat();
      }
    }
    return { undeliverable };
  }
}

/**
 * Splits topic messages into sends of at most `bytesMax` bytes each, keeping the order within a
 * topic. A single message is never split; the dead-letter bounds keep each one far below the limit.
 */
export function byteBounded(input: readonly TopicMessages[], bytesMax: number): TopicMessages[][] {
  const sends: TopicMessages[][] = [];
  let current: Array<{ topic: string; messages: OutgoingMessage[] }> = [];
  let bytes = 0;
  for (const { topic, messages } of input) {
    for (const message of messages) {
      const size = messageBytes(message);
      if (bytes > 0 && bytes + size > bytesMax) {
        sends.push(current);
        current = [];
        bytes = 0;
      }
      let last = current.at(-1);
      if (!last || last.topic !== topic) current.push((last = { topic, messages: [] }));
      last.messages.push(message);
      bytes += size;
    }
  }
  if (current.length > 0) sends.push(current);
  return sends;
}
