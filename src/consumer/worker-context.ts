/**
 * What the command consumer (worker.ts) keeps and reports: its dependencies, its figures (the
 * counts of what it applied, its lag, its paused partitions), and the context its lanes share.
 */
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { Consumer, Kafka } from '../kafka/client.ts';
import type { Logger } from '../log.ts';
import type { OffsetCommitter } from './offset-committer.ts';
import type { KafkaOutboxSink } from './kafka-sink.ts';
import { emptyCounts, type Counts } from './counts.ts';
import type { ChunkPipeline } from './pipeline.ts';
import type { Lane } from './lanes.ts';

export interface WorkerDeps {
  readonly config: Config;
  readonly kafka: Kafka;
  readonly pool: pg.Pool;
  readonly log: Logger;
}

export interface PausedPartition {
  /** When it was paused (ms since epoch). */
  readonly since: number;
  readonly reason: string;
}

export interface WorkerStats extends Counts {
  chunks: number;
  /** Statements that wrote cached chunks (several partitions' chunks may share one). */
  cachedWriteStatements: number;
  /** Offset commit requests sent (one per commit interval with progress, for every partition). */
  offsetCommits: number;
  retries: number;
  /** Replies to a `reply_to` topic that could not be delivered (missing topic, refused). */
  repliesUndeliverable: number;
  /** Times a partition was paused because a dependency failed past the retries. */
  pauses: number;
  /** Times this consumer joined its group (the first join, then one per rebalance). */
  groupJoins: number;
  /** When the first chunk started processing (ms since epoch), for throughput figures. */
  firstChunkAt: number | null;
  lastAppliedAt: number | null;
  /** Messages behind the partition's high watermark after the last chunk, by partition. */
  readonly lag: Map<number, number>;
  /** Partitions paused now; a partition stays listed until a chunk of it commits again. */
  readonly paused: Map<number, PausedPartition>;
  /**
   * The Kafka timestamp of the oldest message not yet applied, by partition, while one is known
   * to wait. Unlike lag, its age keeps growing while a partition is stuck.
   */
  readonly oldestUnappliedAt: Map<number, number>;
  /** The command partitions this consumer holds now; null before it joined the group. */
  assigned: ReadonlySet<number> | null;
}

export function createWorkerStats(): WorkerStats {
  return {
    ...emptyCounts(),
    chunks: 0,
    cachedWriteStatements: 0,
    offsetCommits: 0,
    retries: 0,
    repliesUndeliverable: 0,
    pauses: 0,
    groupJoins: 0,
    firstChunkAt: null,
    lastAppliedAt: null,
    lag: new Map(),
    paused: new Map(),
    oldestUnappliedAt: new Map(),
    assigned: null,
  };
}

export interface WorkerContext extends WorkerDeps {
  readonly consumer: Consumer;
  readonly sink: KafkaOutboxSink;
  /** The offsets the lanes recorded, committed for every partition at once, every CONSUMER_COMMIT_INTERVAL_MS. */
  readonly commits: OffsetCommitter;
  readonly pipeline: ChunkPipeline;
  readonly stats: WorkerStats;
  readonly resumeTimers: Set<NodeJS.Timeout>;
  /** The publishing lane of each partition this consumer handles. */
  readonly lanes: Map<number, Lane>;
  /** False once stopping: handlers take no new chunk, and a failing lane does not rewind. */
  running: boolean;
  /** Batch handlers running now. */
  handlers: number;
}
