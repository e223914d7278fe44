/**
 * The typed producer client: what TypeScript services (and the gateway) use to send commands.
 *   publish(command)             fire and forget; resolves once Kafka acknowledged it.
 *   request(command, {timeoutMs}) publishes and waits for the reply; null on timeout.
 * Commands are keyed by user id with the Java-compatible murmur2 partitioner, so per-user order
 * holds across every producer that follows the contract.
 */
import { randomBytes } from 'node:crypto';
import { REPLY_KEY_HEADER } from '../commands/reply-topics.ts';
import { commandFingerprint, commandKey, serializeCommand, type Command } from '../commands/schema.ts';
import { PRODUCER_OPTIONS, type Kafka, type Producer } from '../kafka/client.ts';
import type { CommandReply } from '../commands/reply-schema.ts';
import type { Logger } from '../log.ts';
import { BatchingPublisher } from './batching-publisher.ts';
import { ReplyListener } from './reply-listener.ts';

/** The most commands in one produce request. */
export const PUBLISH_BATCH_MESSAGES_MAX = 500;

export interface CommandClientOptions {
  readonly kafka: Kafka;
  readonly commandTopic: string;
  readonly replyTopic: string;
  /** The most requests that may wait for a reply at once. */
  readonly waitingRequestsMax: number;
  /** PRODUCE_LINGER_MS: how long the first command of a burst waits for company (0: none). */
  readonly lingerMs?: number;
  /** How often the reply listener commits its position (default REPLY_COMMIT_INTERVAL_MS). */
  readonly replyCommitIntervalMs?: number;
  /**
   * REPLY_ROUTING: `own-partition` (the default) has the replies to this client's requests keyed
   * by a key of its own, so they land on one reply partition that it alone reads;
   * `all-partitions` leaves them keyed by command id, and the client reads every partition.
   */
  readonly replyRouting?: ReplyRouting;
  /** With `own-partition`: this reply key instead of a random one (tests pick partitions with it). */
  readonly replyKey?: string;
  readonly log: Logger;
}

export type ReplyRouting = 'own-partition' | 'all-partitions';

/** A fresh reply key for one client: random, so two processes seldom share a reply partition. */
export function newReplyKey(): string {
  return `reply-${randomBytes(6).toString('hex')}`;
}

export class CommandClient {
  private readonly producer: Producer;
  private readonly waitingRequestsMax: number;
  private readonly replies: ReplyListener;
  private readonly publisher: BatchingPublisher;
  published = 0;
  repliesMatched = 0;
  timeouts = 0;

  constructor(options: CommandClientOptions) {
    this.producer = options.kafka.producer(PRODUCER_OPTIONS);
    this.waitingRequestsMax = options.waitingRequestsMax;
    this.replies = new ReplyListener(
      options.kafka,
      options.replyTopic,
      options.waitingRequestsMax,
      options.log,
      undefined,
      options.replyCommitIntervalMs,
      (options.replyRouting ?? 'own-partition') === 'own-partition' ? (options.replyKey ?? newReplyKey()) : null,
    );
    this.publisher = new BatchingPublisher(
      this.producer,
      options.commandTopic,
      PUBLISH_BATCH_MESSAGES_MAX,
      options.waitingRequestsMax,
      options.lingerMs ?? 0,
      // A request registers its waiter before it publishes: more than one is company.
      () => this.replies.pending > 1,
    );
  }

  async start(): Promise<void> {
    await this.producer.connect();
    await this.replies.start();
  }

  async stop(): Promise<void> {
    await this.replies.stop();
    await this.producer.disconnect();
  }

  /** The reply listener's consumer group, for operators and tests (it commits rarely). */
  get replyGroupId(): string {
    return this.replies.groupId;
  }

  /** Messages on the reply topic for a waited-for id that were not a valid reply to our command. */
  get repliesMalformed(): number {
    return this.replies.malformed;
  }

  /** True once the reply listener holds its partitions: a reply published from now on reaches it. */
  get listening(): boolean {
    return this.replies.listening;
  }

  get waiting(): number {
    return this.replies.pending;
  }

  /** The key this client's replies are asked for under (null: keyed by command id), and where they land. */
  get replyRoute(): { key: string | null; partitions: readonly number[] } {
    return { key: this.replies.routeKey, partitions: this.replies.assignedPartitions };
  }

  /** `headers` go with the message (the gateway's attestation of who sent it, a producer's name). */
  async publish(command: Command, headers?: Record<string, string>): Promise<void> {
    await this.publisher.send({
      key: commandKey(command),
      value: serializeCommand(command),
      ...(headers ? { headers } : {}),
    });
    this.published += 1;
  }

  /** Publishes these commands in one produce request, in order; `headersOf` gives each its headers. */
  async publishMany(
    commands: readonly Command[],
    headersOf?: (command: Command) => Record<string, string>,
  ): Promise<void> {
    await this.publisher.sendAll(
      commands.map((command) => ({
        key: commandKey(command),
        value: serializeCommand(command),
        ...(headersOf ? { headers: headersOf(command) } : {}),
      })),
    );
    this.published += commands.length;
  }

  /**
   * Publishes these commands in one produce request and waits up to `timeoutMs` for each reply;
   * a reply not received in time is null. Publishing errors reject.
   */
  async requestMany(
    commands: readonly Command[],
    options: { timeoutMs: number; headersOf?: (command: Command) => Record<string, string> },
  ): Promise<Array<CommandReply | null>> {
    // A bulk may hold at most half of the waiting slots, so single requests always find some;
    // past that it is published without waiting, and its items are answered as pending.
    if (this.replies.pending + commands.length > this.waitingRequestsMax / 2) {
      await this.publishMany(commands, options.headersOf);
      return commands.map(() => null);
    }
    const waits: Array<ReturnType<ReplyListener['wait']>> = [];
    const routeKey = this.replies.routeKey;
    const headersOf = (command: Command) => {
      const headers = options.headersOf?.(command) ?? {};
      return routeKey === null ? headers : { ...headers, [REPLY_KEY_HEADER]: routeKey };
    };
    try {
      for (const c of commands) waits.push(this.replies.wait(c.id, commandFingerprint(c), options.timeoutMs));
      await this.publishMany(commands, headersOf);
    } catch (error) {
      for (const wait of waits) wait.cancel();
      throw error;
    }
    const answers = await Promise.all(waits.map((wait) => wait.reply));
    for (const answer of answers) {
      if (answer) this.repliesMatched += 1;
      else this.timeouts += 1;
    }
    return answers;
  }

  /** Publishes and waits up to `timeoutMs` for the reply. Publishing errors reject; a timeout resolves null. */
  async request(
    command: Command,
    options: { timeoutMs: number; headers?: Record<string, string> },
  ): Promise<CommandReply | null> {
    // Wait first, publish second: a reply can arrive before `send` returns.
    const waiting = this.replies.wait(command.id, commandFingerprint(command), options.timeoutMs);
    const routeKey = this.replies.routeKey;
    const headers = routeKey === null ? options.headers : { ...options.headers, [REPLY_KEY_HEADER]: routeKey };
    try {
      await this.publish(command, headers);
    } catch (error) {
      waiting.cancel();
      throw error;
    }
    const answer = await waiting.reply;
    if (answer) this.repliesMatched += 1;
    else this.timeouts += 1;
    return answer;
  }
}
