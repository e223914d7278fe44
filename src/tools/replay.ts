/**
 * Replays the command topic into a database through the consumer's own chunk pipeline
 * (consumer/pipeline.ts), so every rule of live consumption holds for rebuilds too:
 * commands already applied count as duplicates and change nothing, so replaying into the live
 * database is safe, and replaying into an empty one rebuilds the ledger from the log alone.
 *
 * Progress is the consumer group's committed offsets: a replay that is interrupted and started
 * again with the same --group resumes where it stopped, and the commands table absorbs the
 * chunk that was in flight.
 */
import { UsageError } from '../cli.ts';
import type pg from 'pg';
import type { Config } from '../config.ts';
import { parseCommandMessage } from '../consumer/parse-message.ts';
import { createChunkPipeline, type ChunkPipeline } from '../consumer/pipeline.ts';
import { segmentsOf } from '../consumer/settings-records.ts';
import { replyTopicPolicyOf } from '../commands/reply-topics.ts';
import { consumerCommandSchema } from '../commands/schema.ts';
import type { EachBatchPayload, Kafka } from '../kafka/client.ts';
import { addCounts, emptyCounts, type Counts } from '../consumer/counts.ts';
import { findCommands } from '../ledger/store/index.ts';
import type { Logger } from '../log.ts';

export type ReplayFrom =
  | { kind: 'earliest' }
  | { kind: 'time'; at: Date }
  | { kind: 'offsets'; offsets: Map<number, bigint> };
export type ReplayTo = { kind: 'latest' } | { kind: 'time'; at: Date };

export function parseFrom(text: string): ReplayFrom {
  if (text === 'earliest') return { kind: 'earliest' };
  if (/^\d+:\d+(,\d+:\d+)*$/.test(text)) {
    return {
      kind: 'offsets',
      offsets: new Map(
        text
          .split(',')
          .map((pair) => pair.split(':'))
          .map(([p, o]) => [Number(p), BigInt(o!)]),
      ),
    };
  }
  const at = new Date(text);
  if (Number.isNaN(at.getTime()))
    throw new UsageError(`--from must be earliest, an ISO time, or partition:offset[,...]; got ${text}`);
  return { kind: 'time', at };
}

export function parseTo(text: string): ReplayTo {
  if (text === 'latest') return { kind: 'latest' };
  const at = new Date(text);
  if (Number.isNaN(at.getTime())) throw new UsageError(`--to must be latest or an ISO time; got ${text}`);
  return { kind: 'time', at };
}

export interface ReplayOptions {
  readonly kafka: Kafka;
  readonly pool: pg.Pool;
  readonly config: Config;
  readonly log: Logger;
  readonly from: ReplayFrom;
  readonly to: ReplayTo;
  readonly group: string;
  readonly dryRun: boolean;
  readonly onProgress?: (progress: ReplayProgress) => void;
}

/** A replay's counts so far (counts.ts), with how far it is. */
export interface ReplayProgress extends Readonly<Counts> {
  readonly processed: number;
  readonly total: number;
  readonly elapsedMs: number;
}

type Progress = Counts & { processed: number; total: number; elapsedMs: number };

export type ReplayReport = ReplayProgress & { readonly resumed: boolean; readonly dryRun: boolean };

type Range = Map<number, { start: bigint; end: bigint }>;

export async function replay(options: ReplayOptions): Promise<ReplayReport> {
  const topic = options.config.topics.commands;
  const { range, resumed } = await prepareGroup(options, topic);
  const progress: Progress = { ...emptyCounts(), processed: 0, total: 0, elapsedMs: 0 };
  for (const { start, end } of range.values()) progress.total += Number(end > start ? end - start : 0n);
  const started = Date.now();
  const pending = new Set([...range].filter(([, r]) => r.end > r.start).map(([p]) => p));
  if (pending.size > 0) await consumeRange(options, topic, range, pending, progress, started);
  return { ...progress, elapsedMs: Date.now() - started, resumed, dryRun: options.dryRun };
}

/**
 * Sets the group's starting offsets from --from, unless the group already has offsets (a
 * restarted replay), and returns each partition's range up to --to.
 */
async function prepareGroup(options: ReplayOptions, topic: string): Promise<{ range: Range; resumed: boolean }> {
  const admin = options.kafka.admin();
  await admin.connect();
  try {
    const watermarks = await admin.fetchTopicOffsets(topic);
    const ends = await endOffsets(admin, topic, options.to, watermarks);
    const committed = (await admin.fetchOffsets({ groupId: options.group, topics: [topic] }))[0]?.partitions ?? [];
    const resumed = committed.some((p) => BigInt(p.offset) >= 0n);
    const starts = resumed
      ? new Map(
          committed.map((p) => [
            p.partition,
            BigInt(p.offset) >= 0n ? BigInt(p.offset) : BigInt(low(watermarks, p.partition)),
          ]),
        )
      : await startOffsets(admin, topic, options.from, watermarks);
    if (!resumed && !options.dryRun) {
      await admin.setOffsets({
        groupId: options.group,
        topic,
        partitions: [...starts].map(([partition, offset]) => ({ partition, offset: String(offset) })),
      });
    }
    const range: Range = new Map();
    for (const { partition } of watermarks)
      range.set(partition, { start: starts.get(partition) ?? ends.get(partition)!, end: ends.get(partition)! });
    return { range, resumed };
  } finally {
    await admin.disconnect();
  }
}

type Watermarks = Array<{ partition: number; offset: string; low: string; high: string }>;

function low(watermarks: Watermarks, partition: number): string {
  return watermarks.find((w) => w.partition === partition)?.low ?? '0';
}

async function endOffsets(
  admin: ReturnType<Kafka['admin']>,
  topic: string,
  to: ReplayTo,
  watermarks: Watermarks,
): Promise<Map<number, bigint>> {
  if (to.kind === 'latest') return new Map(watermarks.map((w) => [w.partition, BigInt(w.high)]));
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, to.at.getTime());
  // -1 means no message at or after that time: everything up to the high watermark is before it.
  return new Map(
    byTime.map((p) => [
      p.partition,
      BigInt(p.offset) < 0n ? BigInt(watermarks.find((w) => w.partition === p.partition)!.high) : BigInt(p.offset),
    ]),
  );
}

async function startOffsets(
  admin: ReturnType<Kafka['admin']>,
  topic: string,
  from: ReplayFrom,
  watermarks: Watermarks,
): Promise<Map<number, bigint>> {
  if (from.kind === 'earliest') return new Map(watermarks.map((w) => [w.partition, BigInt(w.low)]));
  if (from.kind === 'offsets')
    return new Map([...from.offsets].filter(([p]) => watermarks.some((w) => w.partition === p)));
  const byTime = await admin.fetchTopicOffsetsByTimestamp(topic, from.at.getTime());
  return new Map(
    byTime.map((p) => [
      p.partition,
      BigInt(p.offset) < 0n ? BigInt(watermarks.find((w) => w.partition === p.partition)!.high) : BigInt(p.offset),
    ]),
  );
}

async function consumeRange(
  options: ReplayOptions,
  topic: string,
  range: Range,
  pending: Set<number>,
  progress: Progress,
  started: number,
) {
  // A dry run must not move the group's offsets, so it reads without committing.
  const consumer = options.kafka.consumer({
    groupId: options.group,
    maxBytesPerPartition: 4 * 1024 * 1024,
    maxWaitTimeInMs: 250,
    allowAutoTopicCreation: false,
  });
  // Every configured key may verify, but only where the log says the live run accepted it.
  const pipeline = createChunkPipeline({
    config: options.config,
    pool: options.pool,
    log: options.log,
    mode: 'replay',
  });
  let finish!: () => void;
  let fail!: (error: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  consumer.on(consumer.events.CRASH, (event) => {
    if (!event.payload.restart) fail(event.payload.error);
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  if (options.dryRun) {
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const [partition, r] of range) consumer.seek({ topic, partition, offset: String(r.start) });
    });
  }
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async (payload: EachBatchPayload) => {
      const { partition } = payload.batch;
      const end = range.get(partition)!.end;
      const messages = payload.batch.messages.filter((m) => BigInt(m.offset) < end);
      for (let at = 0; at < messages.length; at += options.config.consumer.batchCommandsMax) {
        const chunk = messages.slice(at, at + options.config.consumer.batchCommandsMax);
        await replayChunk(options, pipeline, { topic, partition }, chunk, progress);
        const next = (BigInt(chunk.at(-1)!.offset) + 1n).toString();
        payload.resolveOffset(chunk.at(-1)!.offset);
        if (!options.dryRun) await consumer.commitOffsets([{ topic, partition, offset: next }]);
        progress.elapsedMs = Date.now() - started;
        options.onProgress?.({ ...progress });
        await payload.heartbeat();
      }
      const last = payload.batch.messages.at(-1);
      if (!last || BigInt(last.offset) + 1n >= end || messages.length < payload.batch.messages.length) {
        pending.delete(partition);
        consumer.pause([{ topic, partitions: [partition] }]);
        if (pending.size === 0) finish();
      }
    },
  });
  try {
    await done;
  } finally {
    await consumer.disconnect();
  }
}

/**
 * Replies are not published and dead letters are only counted: the live consumer already sent
 * them, and the settles of transfers are in the log already.
 */
async function replayChunk(
  options: ReplayOptions,
  pipeline: ChunkPipeline,
  source: { topic: string; partition: number },
  chunk: EachBatchPayload['batch']['messages'],
  progress: Progress,
): Promise<void> {
  progress.processed += chunk.length;
  if (options.dryRun) return countDryRun(options, chunk, progress);
  addCounts(progress, (await pipeline.process(source, chunk)).counts);
}

/** What a replay would do, read-only: valid commands are new or known; the rest would be dead letters. */
async function countDryRun(
  options: ReplayOptions,
  chunk: EachBatchPayload['batch']['messages'],
  progress: Progress,
): Promise<void> {
  const schema = consumerCommandSchema();
  const ids: string[] = [];
  const types = new Map<string, string>();
  for (const message of segmentsOf(chunk).flatMap((segment) => segment.commands ?? [])) {
    const parsed = parseCommandMessage(message.value, schema, replyTopicPolicyOf(options.config.topics));
    if (!parsed.ok) progress.deadLettered += 1;
    else {
      ids.push(parsed.command.id);
      types.set(parsed.command.id, parsed.command.type);
    }
  }
  const known = await findCommands(options.pool, [...new Set(ids)]);
  for (const id of ids) {
    if (known.has(id)) progress.duplicates += 1;
    else if (types.get(id) === 'settle') progress.settled += 1;
    else progress.applied += 1;
  }
}
