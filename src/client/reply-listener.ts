/**
 * Waits for replies on the reply topic, correlated by command id (the message key).
 *
 * Each listener reads the reply topic in a consumer group of its own, from the moment it
 * started, and keeps only the replies someone waits for. With a route key (the default for the
 * gateway), its requests ask the consumer to key their replies by that key (REPLY_KEY_HEADER),
 * so they all land on the one partition the key maps to, and the listener reads that partition
 * only: one gateway's replies of a chunk make one produce request, and the gateway fetches one
 * partition, not all. Two gateways whose keys map to one partition both read it and each picks
 * out its own, as every listener did without route keys, when each read every partition. The
 * number of waiters is bounded; past it, `wait` refuses instead of growing without limit.
 *
 * It commits offsets rarely: at most once per REPLY_COMMIT_INTERVAL_MS, on a timer, not after
 * every batch (kafkajs's autoCommit commits after every non-empty batch, whatever its interval).
 * Its group is its own and starts at the latest offset; a commit is only read back when the
 * listener rejoins its group (a coordinator move, a stall past the session timeout), to go on
 * from where it was rather than from the latest reply, which would drop the replies in between.
 * kafkajs's default, a commit per partition batch, was a third of the broker's requests per
 * synchronous command.
 *
 * Anyone who can write to the reply topic can put anything there, so a reply is trusted only
 * if it matches the reply schema (anything else is counted and ignored, never thrown), and it
 * resolves only the waiters whose command has the reply's fingerprint.
 */
import { randomUUID } from 'node:crypto';
import { replySchema } from '../commands/reply-schema.ts';
import type { Kafka } from '../kafka/client.ts';
import { routeAssigner } from '../kafka/route-assigner.ts';
import type { CommandReply } from '../commands/reply-schema.ts';
import type { Logger } from '../log.ts';

/** The longest a rejoined listener may have to re-read, and how often it commits. */
export const REPLY_COMMIT_INTERVAL_MS = 5_000;

/**
 * How long the broker holds an empty fetch of the reply partition. A reply that arrives ends the
 * wait at once, so this costs no latency; it only sets how often an idle gateway asks. At 50 ms
 * an idle gateway sent 20 fetches a second, and the broker idled at 50-74 ms of CPU per second
 * against 30-40 with 500 (npm run bench:cost, idle figures). Heartbeats go out between fetches,
 * so it stays well below the 1 s heartbeat interval and the 10 s session.
 */
export const REPLY_FETCH_WAIT_MS = 500;

export class TooManyWaitersError extends Error {
  override readonly name = 'TooManyWaitersError';
}

interface Waiter {
  /** The fingerprint of the command sent; only a reply with the same one answers it. */
  readonly fingerprint: string;
  resolve(reply: CommandReply | null): void;
  timer: NodeJS.Timeout;
}

export class ReplyListener {
  private readonly waiters = new Map<string, Waiter[]>();
  private waiterCount = 0;
  private readonly consumer;
  /** The listener's own consumer group (random; its position is committed now and then). */
  readonly groupId: string;
  /** The next offset to read, by partition, as this listener has seen it. */
  private readonly positions = new Map<number, string>();
  private positionsChanged = false;
  private commitTimer: NodeJS.Timeout | null = null;
  private started = false;
  /** Messages for a waited-for id that were not valid replies, or answered another command. */
  malformed = 0;
  /** The reply partitions this listener was last assigned (with a route key: one). */
  assignedPartitions: readonly number[] = [];

  constructor(
    kafka: Kafka,
    private readonly topic: string,
    private readonly waitersMax: number,
    _log: Logger,
    groupPrefix = 'balance-replies',
    private readonly commitIntervalMs = REPLY_COMMIT_INTERVAL_MS,
    /** Replies keyed by this come to this listener alone (null: read every partition). */
    readonly routeKey: string | null = null,
  ) {
    this.groupId = `${groupPrefix}-${randomUUID()}`;
    this.consumer = kafka.consumer({
      groupId: this.groupId,
      maxWaitTimeInMs: REPLY_FETCH_WAIT_MS,
      sessionTimeout: 10_000,
      heartbeatInterval: 1_000,
      ...(routeKey === null ? {} : { partitionAssigners: [routeAssigner(topic, routeKey)] }),
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (event) => {
      this.assignedPartitions = event.payload.memberAssignment[topic] ?? [];
    });
  }

  /** Resolves once the listener is assigned its partitions, so no reply published after it is missed. */
  async start(): Promise<void> {
    const joined = new Promise<void>((resolve) => this.consumer.on(this.consumer.events.GROUP_JOIN, () => resolve()));
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.topic], fromBeginning: false });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        this.positions.set(partition, String(BigInt(message.offset) + 1n));
        this.positionsChanged = true;
        this.deliver(message.key, message.value);
      },
    });
    this.commitTimer = setInterval(() => void this.commitPositions(), this.commitIntervalMs);
    this.commitTimer.unref();
    await joined;
    this.started = true;
  }

  /**
   * Handles one message of the reply topic; never throws, whatever the message holds. A message
   * keyed by this listener's route key is parsed once, and answers the waiters of the command it
   * names; any other key is a command id (a reply sent without a route) and is parsed only if
   * someone waits for that id.
   */
  deliver(key: Buffer | null, value: Buffer | null): void {
    const id = key?.toString();
    if (!id) return;
    if (id === this.routeKey) {
      const reply = parseReply(value);
      if (!reply) this.malformed += 1;
      else if (this.waiters.has(reply.command_id)) this.settle(reply.command_id, reply);
      return;
    }
    if (!this.waiters.has(id)) return;
    const reply = parseReply(value);
    if (reply && reply.command_id === id) this.settle(id, reply);
    else this.malformed += 1;
  }

  /** Commits where the listener is, if it moved; a failure waits for the next tick. */
  private async commitPositions(): Promise<void> {
    if (!this.positionsChanged) return;
    this.positionsChanged = false;
    const offsets = [...this.positions].map(([partition, offset]) => ({ topic: this.topic, partition, offset }));
    await this.consumer.commitOffsets(offsets).catch(() => {
      this.positionsChanged = true;
    });
  }

  async stop(): Promise<void> {
    if (this.commitTimer) clearInterval(this.commitTimer);
    for (const id of [...this.waiters.keys()]) this.settle(id, null);
    if (this.started) await this.consumer.disconnect();
  }

  get listening(): boolean {
    return this.started;
  }

  get pending(): number {
    return this.waiterCount;
  }

  /**
   * Registers interest in `commandId` before its command is published. `reply` resolves with
   * the reply, or null after `timeoutMs` or on `cancel()` (for a command that was never sent).
   */
  wait(
    commandId: string,
    fingerprint: string,
    timeoutMs: number,
  ): { reply: Promise<CommandReply | null>; cancel: () => void } {
    if (this.waiterCount >= this.waitersMax)
      throw new TooManyWaitersError(`more than ${this.waitersMax} requests are waiting for replies`);
    let waiter!: Waiter;
    const reply = new Promise<CommandReply | null>((resolve) => {
      waiter = { fingerprint, resolve, timer: setTimeout(() => this.expire(commandId, waiter), timeoutMs) };
      const list = this.waiters.get(commandId);
      if (list) list.push(waiter);
      else this.waiters.set(commandId, [waiter]);
      this.waiterCount += 1;
    });
    return {
      reply,
      cancel: () => {
        clearTimeout(waiter.timer);
        this.expire(commandId, waiter);
      },
    };
  }

  private expire(commandId: string, waiter: Waiter): void {
    const list = this.waiters.get(commandId);
    if (!list) return;
    const remaining = list.filter((w) => w !== waiter);
    if (remaining.length === list.length) return;
    this.waiterCount -= 1;
    if (remaining.length) this.waiters.set(commandId, remaining);
    else this.waiters.delete(commandId);
    waiter.resolve(null);
  }

  /** Resolves the waiters `reply` answers (all of them when stopping, with null). */
  private settle(commandId: string, reply: CommandReply | null): void {
    const list = this.waiters.get(commandId);
    if (!list) return;
    const answered = reply ? list.filter((w) => w.fingerprint === reply.fingerprint) : list;
    if (reply && answered.length === 0) {
      this.malformed += 1;
      return;
    }
    const remaining = list.filter((w) => !answered.includes(w));
    if (remaining.length > 0) this.waiters.set(commandId, remaining);
    else this.waiters.delete(commandId);
    this.waiterCount -= answered.length;
    // Several requests with one key (sent concurrently) are one command: the first waiter gets
    // the outcome as it came; the others are told theirs repeated it, as the topic says of a
    // redelivered copy. Otherwise every one of them would answer 201 "applied".
    answered.forEach((waiter, i) => {
      clearTimeout(waiter.timer);
      waiter.resolve(reply && i > 0 ? { ...reply, duplicate: true } : reply);
    });
  }
}

/** A valid reply, or null for anything else: bad JSON, the wrong shape, no value. */
export function parseReply(value: Buffer | null): CommandReply | null {
  if (!value) return null;
  try {
    const result = replySchema.safeParse(JSON.parse(value.toString('utf8')));
    return result.success ? result.data : null;
  } catch {
    return null;
  }
}
