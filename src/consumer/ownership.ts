/**
 * The partitions this consumer owns, each with its epoch and its state cache. A partition is
 * claimed (its epoch raised in PostgreSQL, claim_partition.sql) before its first chunk after each
 * assignment; every write of its chunks names that epoch, so once another consumer has claimed
 * the partition, this one's writes are refused and it writes nothing more until it is given the
 * partition again. The cache survives a reassignment only when no one else claimed the
 * partition in between (the new epoch is the old one plus one); otherwise, and whenever the
 * partition is taken away, it is dropped.
 */
import type pg from 'pg';
import type { Config } from '../config.ts';
import { ChunkWriter } from '../ledger/chunk-writer.ts';
import { StateCache } from '../ledger/state-cache.ts';
import type { Fence } from '../ledger/store/index.ts';

interface Owned {
  /** The epoch this consumer claimed; null until it claims the partition in this assignment. */
  epoch: bigint | null;
  /** The epoch it held before this assignment, to tell whether anyone claimed it meanwhile. */
  previous: bigint | null;
  lost: boolean;
  readonly cache: StateCache;
}

export interface Ownership {
  readonly fence: Fence;
  /** Null when the cache is turned off (CONSUMER_CACHED_USERS_MAX=0). */
  readonly cache: StateCache | null;
  /** Writes this consumer's cached chunks, merged across its partitions. */
  readonly writer: ChunkWriter;
}

export class PartitionLostError extends Error {
  override readonly name = 'PartitionLostError';
  readonly failureKind = 'transient';
}

export class PartitionOwnership {
  private readonly owned = new Map<number, Owned>();
  readonly writer: ChunkWriter;

  constructor(
    private readonly pool: pg.Pool,
    private readonly topic: string,
    private readonly limits: Config['consumer']['stateCache'],
    writeCommandsMax = 2_000,
    onWrite?: () => void,
  ) {
    this.writer = new ChunkWriter(pool, writeCommandsMax, onWrite);
  }

  /** A new assignment: partitions no longer held are forgotten; held ones are claimed again. */
  assigned(partitions: readonly number[]): void {
    const held = new Set(partitions);
    for (const partition of this.owned.keys()) if (!held.has(partition)) this.owned.delete(partition);
    for (const entry of this.owned.values()) {
      entry.previous = entry.epoch;
      entry.epoch = null;
      entry.lost = false;
    }
  }

  /** The partition's fence and cache, claiming it first if this assignment has not yet. */
  async of(partition: number): Promise<Ownership> {
    let entry = this.owned.get(partition);
    if (!entry) {
      entry = { epoch: null, previous: null, lost: false, cache: new StateCache(this.limits) };
      this.owned.set(partition, entry);
    }
    if (entry.lost) throw new PartitionLostError(`partition ${partition} was claimed by another consumer`);
    if (entry.epoch === null) {
      const { rows } = await this.pool.query<{ epoch: string }>({
        name: 'claim_partition',
        text: 'SELECT claim_partition($1, $2) AS epoch',
        values: [this.topic, partition],
      });
      entry.epoch = BigInt(rows[0]!.epoch);
      if (entry.previous === null || entry.epoch !== entry.previous + 1n) entry.cache.clear();
    }
    const fence = { topic: this.topic, partition, epoch: entry.epoch };
    return { fence, cache: this.limits.usersMax > 0 ? entry.cache : null, writer: this.writer };
  }

  /** A write was refused for this partition's epoch: write nothing more until it is assigned again. */
  lost(partition: number): void {
    const entry = this.owned.get(partition);
    if (!entry) return;
    entry.lost = true;
    entry.cache.clear();
  }

  /** Forgets a partition's cache (its users are read again before their next chunk). */
  forget(partition: number): void {
    this.owned.get(partition)?.cache.clear();
  }
}
