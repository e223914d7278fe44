import type { EachBatchPayload, KafkaMessage } from '../kafka/client.ts';
import { addCounts } from './counts.ts';
import { raiseSettlesPublished } from './settles-published.ts';
import { messageTimeMs } from './parse-message.ts';
import type { ProcessedChunk } from './pipeline.ts';
import type { WorkerContext } from './worker-context.ts';

export async function drainLanes(ctx: WorkerContext, waitMs: number): Promise<void> {
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
export interface Lane {
  tail: Promise<void>;
  queued: number;
  failed: boolean;
}

/** Flushes a lane may hold before the batch handler waits for it: bounds memory and lag. */
export const LANE_FLUSHES_QUEUED_MAX = 4;

export function laneOf(ctx: WorkerContext, partition: number): Lane {
  let lane = ctx.lanes.get(partition);
  if (!lane) ctx.lanes.set(partition, (lane = { tail: Promise.resolve(), queued: 0, failed: false }));
  return lane;
}

export async function consumeBatch(payload: EachBatchPayload, ctx: WorkerContext): Promise<void> {
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

export function enqueue(
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
export function rewind(ctx: WorkerContext, payload: EachBatchPayload, offset: string, error: unknown): void {
  const { topic, partition } = payload.batch;
  ctx.consumer.seek({ topic, partition, offset });
  pausePartition(payload, ctx, error, () => {
    const lane = ctx.lanes.get(partition);
    if (lane) lane.failed = false;
  });
}

export async function publishAndCommit(
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
  // Only now, with this chunk's own sends acknowledged; committed with every partition's within
  // the commit interval (offset-committer.ts).
  ctx.commits.record({ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() });
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
export async function markSettlesPublished(ctx: WorkerContext, partition: number, last: string): Promise<void> {
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
export const GROUP_MEMBERSHIP_ERRORS = new Set([
  'REBALANCE_IN_PROGRESS',
  'NOT_COORDINATOR_FOR_GROUP',
  'ILLEGAL_GENERATION',
  'UNKNOWN_MEMBER_ID',
  'FENCED_INSTANCE_ID',
]);

export function isGroupMembershipError(error: unknown): boolean {
  const type = (error as { type?: unknown })?.type;
  return typeof type === 'string' && GROUP_MEMBERSHIP_ERRORS.has(type);
}

/**
 * Stops fetching this partition where it stands (its next fetch starts at the first offset not
 * committed) and resumes it after PARTITION_PAUSE_MS. It stays reported as paused until a chunk
 * of it commits again.
 */
export function pausePartition(
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

/** When a message was produced, for lag metrics; now when its timestamp names no instant. */
export function seenAtMs(message: KafkaMessage): number {
  return messageTimeMs(message.timestamp) ?? Date.now();
}
