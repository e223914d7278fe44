/**
 * The command consumer. For each fetched batch of a partition, in chunks of at most
 * `batchCommandsMax` messages:
 *   1. the chunk pipeline (pipeline.ts) screens, applies and answers the chunk, isolating any
 *      command the database refuses, so no message can stop the partition;
 *   2. the outbox is flushed: settles, replies and dead letters, acknowledged by Kafka;
 *   3. only then is the offset after the chunk committed.
 * A crash anywhere before 3 redelivers the chunk; the commands table turns every redelivered
 * command into a duplicate, so effects happen once and replies at least once.
 *
 * When a dependency fails past the retries (PostgreSQL down, the broker refusing our sends), the
 * partition is paused where it stands, reported (metrics, /readyz), and tried again after
 * PARTITION_PAUSE_MS. Nothing is skipped because a dependency is down.
 */
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from '../kafka/client.ts';
import type { Logger } from '../log.ts';
import { InternalCommandSigner } from '../commands/internal-proof.ts';
import { KeyRing } from '../commands/key-ring.ts';
import { SigningKeyWatch } from '../signing-key-watch.ts';
import { HoldExpirySweeper } from './hold-expiry.ts';
import { Coalescer } from './coalescer.ts';
import { KafkaOutboxSink } from './kafka-sink.ts';
import { ParkedOffsetsWatch, pruneParkedBelow } from './parking.ts';
import { PeriodicTask } from '../periodic.ts';
import { raiseSettlesPublished } from './settles-published.ts';
import { messageTimeMs } from './parse-message.ts';
import {
  addCounts,
  createChunkPipeline,
  emptyCounts,
  type ChunkCounts,
  type ChunkPipeline,
  type ProcessedChunk,
} from './pipeline.ts';

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

export interface WorkerStats extends ChunkCounts {
  chunks: number;
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

export interface CommandWorker {
  readonly stats: WorkerStats;
  /** Which key it signs with, and whether every partition accepts it. */
  readonly signingKey: SigningKeyWatch;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createWorkerStats(): WorkerStats {
  return {
    ...emptyCounts(),
    chunks: 0,
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

interface TopicPartitionOffset {
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
}

interface WorkerContext extends WorkerDeps {
  readonly consumer: Consumer;
  readonly sink: KafkaOutboxSink;
  /** Offset commits of the lanes that finished together, as one request. */
  readonly commits: Coalescer<TopicPartitionOffset>;
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

export function createCommandWorker(deps: WorkerDeps): CommandWorker {
  const { config, kafka, log } = deps;
  const stats = createWorkerStats();
  let partitionCount = 0;
  const consumer = kafka.consumer({
    groupId: config.consumer.group,
    sessionTimeout: config.consumer.sessionTimeoutMs,
    rebalanceTimeout: 60_000,
    heartbeatInterval: Math.floor(config.consumer.sessionTimeoutMs / 10),
    minBytes: config.consumer.fetchBytesMin,
    maxWaitTimeInMs: config.consumer.fetchWaitMs,
    maxBytesPerPartition: 4 * 1024 * 1024,
    allowAutoTopicCreation: false,
    readUncommitted: false,
  });
  // kafkajs heartbeats for the whole consumer through any batch's payload; the pipeline calls
  // this between retries and bisection steps, so a long chunk never outlasts the session.
  let heartbeat: (() => Promise<void>) | null = null;
  const keepAlive = () => void heartbeat?.().catch(() => {});
  const parkedOffsets = new ParkedOffsetsWatch(
    deps.pool,
    { ...deps.pool.options, application_name: 'balance-consumer-parked-watch' },
    config.topics.commands,
    log,
  );
  // One ring for everything this process signs, switched by the watch (signing-key-watch.ts).
  const keys = new KeyRing(config.internalCommands);
  const signingKey = new SigningKeyWatch({ pool: deps.pool, topic: config.topics.commands, keys, log });
  const pipeline = createChunkPipeline({
    ...deps,
    keys,
    parkedOffsets,
    recordLimits: true,
    onRetry: () => (stats.retries += 1),
    keepAlive,
    partitionCount: () => partitionCount,
  });
  const sink = new KafkaOutboxSink(kafka, log, config.consumer.kafkaBatchBytesMax);
  const sweeper = new HoldExpirySweeper({
    pool: deps.pool,
    sink,
    signer: new InternalCommandSigner(keys),
    commandTopic: config.topics.commands,
    sweepMs: config.consumer.holdExpirySweepMs,
    batchMax: config.consumer.holdExpiryBatchMax,
    log,
    // Only the partitions this consumer holds: their owner applies the expires (see hold-expiry.ts).
    ownedPartitions: () => [...(stats.assigned ?? [])],
  });
  const parkedRetention = new PeriodicTask(
    'parked-offsets-retention',
    PARKED_PRUNE_INTERVAL_MS,
    async () => pruneParkedBelow(deps.pool, config.topics.commands, await lowWatermarks(kafka, config.topics.commands)),
    log,
  );
  const ctx: WorkerContext = {
    ...deps,
    consumer,
    sink,
    pipeline,
    stats,
    commits: new Coalescer({
      run: (offsets) => consumer.commitOffsets([...offsets]),
      itemsMax: OFFSETS_MERGED_MAX,
      isolateFailures: false,
    }),
    resumeTimers: new Set(),
    lanes: new Map(),
    running: true,
    handlers: 0,
  };
  // A retriable crash (the group coordinator or a partition leader not there yet, as on every
  // first start of a broker) is a wait: one info line says what for. Past a few in a row without
  // joining the group, it is a warning; a crash kafkajs gives up on is an error.
  let restartsSinceJoin = 0;
  consumer.on(consumer.events.CRASH, (event) => {
    const { error, restart } = event.payload;
    if (!restart) {
      log.error({ err: error }, 'the command consumer stopped and kafkajs does not restart it');
      return;
    }
    restartsSinceJoin += 1;
    const level = restartsSinceJoin <= RESTARTS_QUIET_MAX ? 'info' : 'warn';
    log[level](
      { cause: (error as Error)?.message, restarts: restartsSinceJoin },
      'waiting for Kafka (its group coordinator or a partition leader); the command consumer starts again in a moment',
    );
  });
  consumer.on(consumer.events.GROUP_JOIN, (event) => {
    // After a rebalance kafkajs fetches from the committed offsets: lanes start afresh.
    for (const lane of ctx.lanes.values()) lane.failed = false;
    restartsSinceJoin = 0;
    const partitions = event.payload.memberAssignment[config.topics.commands] ?? [];
    onAssignment(stats, partitions);
    void recordOnAssignment(ctx, partitions);
  });

  return {
    stats,
    signingKey,
    async start() {
      await signingKey.start();
      await ctx.sink.connect();
      await parkedOffsets.start();
      try {
        partitionCount = await countPartitions(kafka, config.topics.commands);
        await consumer.connect();
        await consumer.subscribe({ topics: [config.topics.commands], fromBeginning: true });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: config.consumer.partitionsConcurrent,
          eachBatch: (payload) => {
            heartbeat = payload.heartbeat;
            return consumeBatch(payload, ctx);
          },
        });
      } catch (error) {
        await parkedOffsets.stop();
        signingKey.stop();
        throw error;
      }
      sweeper.start();
      parkedRetention.start();
      log.info({ topic: config.topics.commands, group: config.consumer.group }, 'command consumer started');
    },
    async stop() {
      for (const timer of ctx.resumeTimers) clearTimeout(timer);
      await sweeper.stop();
      await parkedRetention.stop();
      // Stop fetching, let the handlers in flight finish, publish and commit what they applied,
      // then leave the group: the next owner of each partition starts right after our last
      // committed offset.
      const held = [...(stats.assigned ?? [])];
      if (held.length > 0) consumer.pause([{ topic: config.topics.commands, partitions: held }]);
      ctx.running = false;
      try {
        await drainLanes(ctx, STOP_DRAIN_MS);
        await consumer.disconnect();
        await ctx.sink.disconnect();
      } finally {
        // Its connection and timers would otherwise keep a failed stop's process alive.
        await parkedOffsets.stop();
        signingKey.stop();
      }
      log.info(summary(stats), 'command consumer stopped');
    },
  };
}

/** Consumer restarts in a row, before it joins its group, that are only an info line each. */
const RESTARTS_QUIET_MAX = 5;

/** The longest a stopping consumer waits for its lanes to publish and commit. */
const STOP_DRAIN_MS = 15_000;

async function drainLanes(ctx: WorkerContext, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  // A handler in flight may still queue a flush: wait for handlers and lanes alike.
  while (Date.now() < deadline) {
    if (ctx.handlers === 0 && [...ctx.lanes.values()].every((l) => l.queued === 0)) return;
    await Promise.race([
      Promise.all([...ctx.lanes.values()].map((l) => l.tail)),
      new Promise((r) => setTimeout(r, 20)),
    ]);
  }
}

/** How often a consumer deletes the parks of messages the command topic's retention removed. */
const PARKED_PRUNE_INTERVAL_MS = 60 * 60_000;

async function lowWatermarks(kafka: Kafka, topic: string): Promise<Map<number, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.low)]));
  } finally {
    await admin.disconnect();
  }
}

async function countPartitions(kafka: Kafka, topic: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    return metadata.topics[0]?.partitions.length ?? 0;
  } finally {
    await admin.disconnect();
  }
}

/**
 * Publishes this consumer's settings (limits, accepted keys) to the partitions it was just given
 * whose stored ones differ, so idle partitions say too which keys they accept. Best effort: a
 * partition's next chunk publishes them anyway.
 */
async function recordOnAssignment(ctx: WorkerContext, partitions: readonly number[]): Promise<void> {
  const topic = ctx.config.topics.commands;
  try {
    const messages = await ctx.pipeline.recordsOnAssignment(topic, partitions);
    if (messages.length > 0) await ctx.sink.sendCore([{ topic, messages }]);
  } catch (error) {
    ctx.log.warn({ err: error }, 'could not record the settings of newly assigned partitions; their next chunk will');
  }
}

/** Forgets what it knew of partitions that moved to another consumer. */
function onAssignment(stats: WorkerStats, partitions: readonly number[]): void {
  const held = new Set(partitions);
  stats.assigned = held;
  stats.groupJoins += 1;
  for (const map of [stats.lag, stats.paused, stats.oldestUnappliedAt]) {
    for (const partition of map.keys()) if (!held.has(partition)) map.delete(partition);
  }
}

/**
 * The publishing lane of a partition: the outbox flushes and offset commits of its chunks, one
 * after another, in offset order, behind the database work. kafkajs fetches a broker's
 * partitions again only once every batch of the last fetch was handled, so a batch handler that
 * waited for its flushes would hold every partition to the slowest flush; instead it returns as
 * soon as its chunks are committed in PostgreSQL, and the lane publishes them.
 *
 * An offset is still committed only after its chunk is in PostgreSQL and its outbox was
 * acknowledged by Kafka, and in order. When a flush fails, the lane drops the flushes behind
 * it, and the partition is sent back (seek) to the failed chunk's first offset and paused:
 * those chunks are processed again later, as duplicates, and published then.
 */
interface Lane {
  tail: Promise<void>;
  queued: number;
  failed: boolean;
}

/** The most partitions' offsets in one commit request. */
const OFFSETS_MERGED_MAX = 256;

/** Flushes a lane may hold before the batch handler waits for it: bounds memory and lag. */
const LANE_FLUSHES_QUEUED_MAX = 4;

function laneOf(ctx: WorkerContext, partition: number): Lane {
  let lane = ctx.lanes.get(partition);
  if (!lane) ctx.lanes.set(partition, (lane = { tail: Promise.resolve(), queued: 0, failed: false }));
  return lane;
}

async function consumeBatch(payload: EachBatchPayload, ctx: WorkerContext): Promise<void> {
  const { batch } = payload;
  const source = { topic: batch.topic, partition: batch.partition };
  const chunkSize = ctx.config.consumer.batchCommandsMax;
  const lane = laneOf(ctx, batch.partition);
  ctx.handlers += 1;
  try {
    for (let start = 0; start < batch.messages.length; start += chunkSize) {
      if (!payload.isRunning() || payload.isStale() || lane.failed || !ctx.running) break;
      const chunk = batch.messages.slice(start, start + chunkSize);
      ctx.stats.firstChunkAt ??= Date.now();
      if (!ctx.stats.oldestUnappliedAt.has(batch.partition))
        ctx.stats.oldestUnappliedAt.set(batch.partition, seenAtMs(chunk[0]!));
      const processed = await ctx.pipeline.process(source, chunk);
      // The next fetch goes on after this chunk; its offset is committed by the lane.
      payload.resolveOffset(chunk.at(-1)!.offset);
      enqueue(
        ctx,
        lane,
        payload,
        () => publishAndCommit(payload, ctx, processed, chunk, batch.messages[start + chunkSize]),
        chunk[0]!.offset,
      );
      if (lane.queued > LANE_FLUSHES_QUEUED_MAX) await lane.tail;
    }
  } catch (error) {
    if (isGroupMembershipError(error) || !payload.isRunning()) throw error;
    pausePartition(payload, ctx, error);
  } finally {
    ctx.handlers -= 1;
  }
}

function enqueue(
  ctx: WorkerContext,
  lane: Lane,
  payload: EachBatchPayload,
  flush: () => Promise<void>,
  firstOffset: string,
): void {
  lane.queued += 1;
  lane.tail = lane.tail.then(async () => {
    try {
      if (!lane.failed) await flush();
    } catch (error) {
      lane.failed = true;
      if (!isGroupMembershipError(error) && ctx.running) rewind(ctx, payload, firstOffset, error);
    } finally {
      lane.queued -= 1;
    }
  });
}

/** A flush failed: process the partition again from that chunk, after a pause. */
function rewind(ctx: WorkerContext, payload: EachBatchPayload, offset: string, error: unknown): void {
  const { topic, partition } = payload.batch;
  ctx.consumer.seek({ topic, partition, offset });
  pausePartition(payload, ctx, error, () => {
    const lane = ctx.lanes.get(partition);
    if (lane) lane.failed = false;
  });
}

async function publishAndCommit(
  payload: EachBatchPayload,
  ctx: WorkerContext,
  processed: ProcessedChunk,
  chunk: readonly KafkaMessage[],
  next: KafkaMessage | undefined,
): Promise<void> {
  const { batch } = payload;
  const last = chunk.at(-1)!.offset;
  // Recorded before the replies go out: a caller who has seen a transfer's reply, and polls,
  // must find it applied too.
  const settlesSent = () =>
    processed.outbox.settleCount > 0 ? markSettlesPublished(ctx, batch.partition, last) : Promise.resolve();
  const report = await processed.outbox.flush(ctx.sink, () => payload.heartbeat(), settlesSent);
  // Only now, with this chunk's own sends acknowledged; other lanes' commits may share the request.
  await ctx.commits.submit({ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() });
  const { stats } = ctx;
  addCounts(stats, processed.counts);
  stats.repliesUndeliverable += report.undeliverable;
  stats.chunks += 1;
  if (processed.appliedAny) stats.lastAppliedAt = Date.now();
  const lag = Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(last) - 1n));
  stats.lag.set(batch.partition, lag);
  // The next message's age is known if it is in this batch; otherwise the last applied one's
  // timestamp is a bound from above until the next batch arrives.
  if (lag === 0) stats.oldestUnappliedAt.delete(batch.partition);
  else stats.oldestUnappliedAt.set(batch.partition, seenAtMs(next ?? chunk.at(-1)!));
  if (stats.paused.delete(batch.partition))
    ctx.log.info({ partition: batch.partition }, 'partition resumed: its commands apply again');
  await payload.heartbeat();
}

/**
 * Lets polls see the chunk's transfers as applied now that their settles are acknowledged. Best
 * effort: if it fails, polls wait for the settles' own rows instead, and the partition goes on.
 */
async function markSettlesPublished(ctx: WorkerContext, partition: number, last: string): Promise<void> {
  try {
    await raiseSettlesPublished(ctx.pool, partition, last);
  } catch (error) {
    ctx.log.warn(
      { err: error, partition },
      'could not record that settles were published; polls wait for them to apply',
    );
  }
}

/** Group-membership errors are kafkajs's to handle: it rejoins, and the new owner resumes. */
const GROUP_MEMBERSHIP_ERRORS = new Set([
  'REBALANCE_IN_PROGRESS',
  'NOT_COORDINATOR_FOR_GROUP',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'FENCED_INSTANCE_ID',
]);

function isGroupMembershipError(error: unknown): boolean {
  const type = (error as { type?: unknown })?.type;
  return typeof type === 'string' && GROUP_MEMBERSHIP_ERRORS.has(type);
}

/**
 * Stops fetching this partition where it stands (its next fetch starts at the first offset not
 * committed) and resumes it after PARTITION_PAUSE_MS. It stays reported as paused until a chunk
 * of it commits again.
 */
function pausePartition(
  payload: EachBatchPayload,
  ctx: WorkerContext,
  error: unknown,
  beforeResume?: () => void,
): void {
  const { partition, topic } = payload.batch;
  // Through the consumer, not the payload: a lane may pause after its batch handler returned.
  ctx.consumer.pause([{ topic, partitions: [partition] }]);
  const resume = () => {
    beforeResume?.();
    ctx.consumer.resume([{ topic, partitions: [partition] }]);
  };
  const reason = error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : String(error);
  if (!ctx.stats.paused.has(partition)) ctx.stats.paused.set(partition, { since: Date.now(), reason });
  ctx.stats.pauses += 1;
  ctx.log.error(
    { err: error, partition, resumeInMs: ctx.config.consumer.partitionPauseMs },
    'partition paused: a dependency failed past APPLY_RETRIES_MAX; nothing was skipped, and it is tried again after the pause',
  );
  const timer = setTimeout(() => {
    ctx.resumeTimers.delete(timer);
    resume();
  }, ctx.config.consumer.partitionPauseMs);
  ctx.resumeTimers.add(timer);
}

function summary(stats: WorkerStats) {
  const { lag, paused, oldestUnappliedAt, assigned, ...counts } = stats;
  return { ...counts, paused: [...paused.keys()] };
}

/** When a message was produced, for lag metrics; now when its timestamp names no instant. */
function seenAtMs(message: KafkaMessage): number {
  return messageTimeMs(message.timestamp) ?? Date.now();
}
