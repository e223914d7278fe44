/**
 * The consumer's offset commits, every `intervalMs` instead of after every chunk. A lane records
 * the offset after a chunk once the chunk is in PostgreSQL and its outbox was acknowledged
 * (lanes.ts); the committer sends the latest offset of every partition in one request per
 * interval, the way Kafka Streams commits every `commit.interval.ms`. Under synchronous load a
 * commit per chunk was a sixth of the Kafka requests per command (docs/performance.md).
 *
 * What this costs: after a crash, up to `intervalMs` of commands are delivered again. They were
 * decided, so the consumer answers them from PostgreSQL as duplicates and publishes nothing new
 * (a transfer's settles still in flight again, which their ids make harmless). A stop commits
 * what it recorded first; a partition this consumer lost is dropped, so it never commits for
 * another consumer's partition.
 */
import type { Logger } from '../log.ts';

export interface TopicPartitionOffset {
  readonly topic: string;
  readonly partition: number;
  /** The next offset to read: everything before it is applied and published. */
  readonly offset: string;
}

export class OffsetCommitter {
  /** The latest recorded offset of each partition not committed yet, by `topic:partition`. */
  private readonly due = new Map<string, TopicPartitionOffset>();
  /** The partitions this consumer holds, by topic, once the group told it (retain). */
  private readonly held = new Map<string, ReadonlySet<number>>();
  private timer: NodeJS.Timeout | null = null;
  private committing: Promise<void> = Promise.resolve();
  constructor(
    private readonly commit: (offsets: readonly TopicPartitionOffset[]) => Promise<void>,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  /** Everything before `offset` of the partition is applied and published. Offsets only grow. */
  record(position: TopicPartitionOffset): void {
    // A lane that finishes after a rebalance took its partition away records nothing.
    if (!(this.held.get(position.topic)?.has(position.partition) ?? true)) return;
    const key = `${position.topic}:${position.partition}`;
    const known = this.due.get(key);
    if (!known || BigInt(position.offset) > BigInt(known.offset)) this.due.set(key, position);
  }

  /** Forgets the partitions of `topic` not in `partitions`, now and later: another consumer owns them now. */
  retain(topic: string, partitions: ReadonlySet<number>): void {
    this.held.set(topic, partitions);
    for (const [key, position] of this.due)
      if (position.topic === topic && !partitions.has(position.partition)) this.due.delete(key);
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.flush().catch(() => {}), this.intervalMs);
    this.timer.unref();
  }

  /** Stops the timer and commits what is recorded. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  /**
   * Commits every recorded offset in one request, one request at a time. A failed commit keeps
   * its offsets for the next one, unless a later offset of the partition was recorded meanwhile.
   */
  flush(): Promise<void> {
    // Failures are logged and kept for the next commit; the chain itself never stays rejected.
    this.committing = this.committing.then(() => this.commitDue()).catch(() => {});
    return this.committing;
  }

  private async commitDue(): Promise<void> {
    if (this.due.size === 0) return;
    const offsets = [...this.due.values()];
    this.due.clear();
    try {
      await this.commit(offsets);
    } catch (error) {
      for (const position of offsets) {
        const key = `${position.topic}:${position.partition}`;
        if (!this.due.has(key)) this.due.set(key, position);
      }
      this.log.warn({ err: error, partitions: offsets.length }, 'an offset commit failed; it is sent again');
      throw error;
    }
  }
}
