/**
 * Turns concurrent calls into one: while a call is in flight, new submissions queue, and when
 * it ends everything queued (up to what `fits`) goes in the next call. The partition lanes of
 * the consumer each send and commit after their own chunks; through a coalescer, the lanes that
 * finished together make one produce request and one offset commit, not one per partition.
 *
 * A submission resolves only once the call that carried it succeeded. When a merged call
 * fails, each of its submissions can be tried again alone (`isolateFailures`), so one
 * partition's bad message (too large for the topic, say) fails only that partition, as it would
 * have without merging.
 * Nothing waits to fill a call: the first submission after a quiet moment goes out at once.
 */
export interface CoalescerOptions<T> {
  /** Carries out one call for every item given, in order; throws if any of it failed. */
  readonly run: (items: readonly T[]) => Promise<void>;
  /** The most items in one call. */
  readonly itemsMax: number;
  /** An item's size (bytes, say), and the most one call may carry; the first item always goes. */
  readonly weight?: (item: T) => number;
  readonly weightMax?: number;
  /**
   * Whether a failed merged call is tried again item by item. Yes for sends, where one item's
   * message can be what the broker refused; no for offset commits, whose failures (a rebalance,
   * the coordinator gone) are the whole group's.
   */
  readonly isolateFailures: boolean;
}

interface Submission<T> {
  readonly item: T;
  resolve(): void;
  reject(error: unknown): void;
}

export class Coalescer<T> {
  private queue: Submission<T>[] = [];
  private draining = false;
  /** Calls made, and how many submissions they carried: the merge ratio, for metrics and tests. */
  calls = 0;
  submissions = 0;

  constructor(private readonly options: CoalescerOptions<T>) {}

  submit(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.submissions += 1;
      if (!this.draining) void this.drain();
    });
  }

  private async drain(): Promise<void> {
    this.draining = true;
    try {
      while (this.queue.length > 0) await this.callWith(this.take());
    } finally {
      this.draining = false;
    }
  }

  /** The longest prefix of the queue that fits one call. */
  private take(): Submission<T>[] {
    const { itemsMax, weight = () => 0, weightMax = Infinity } = this.options;
    let n = 1;
    let total = weight(this.queue[0]!.item);
    while (n < this.queue.length && n < itemsMax) {
      total += weight(this.queue[n]!.item);
      if (total > weightMax) break;
      n += 1;
    }
    return this.queue.splice(0, n);
  }

  private async callWith(submissions: readonly Submission<T>[]): Promise<void> {
    try {
      this.calls += 1;
      await this.options.run(submissions.map((s) => s.item));
      for (const s of submissions) s.resolve();
    } catch (error) {
      if (submissions.length === 1 || !this.options.isolateFailures) {
        for (const s of submissions) s.reject(error);
        return;
      }
      for (const s of submissions) await this.callWith([s]);
    }
  }
}
