import type { Kafka } from '../kafka/client.ts';
import { InternalCommandSigner } from '../commands/internal-proof.ts';
import { KeyRing } from '../commands/key-ring.ts';
import { SigningKeyWatch } from '../signing-key-watch.ts';
import { HoldExpirySweeper } from './hold-expiry.ts';
import { OffsetCommitter } from './offset-committer.ts';
import { KafkaOutboxSink } from './kafka-sink.ts';
import { ParkedOffsetsWatch, pruneParkedBelow } from './parking.ts';
import { PeriodicTask } from '../periodic.ts';
import { anchorSigner } from '../ledger/anchor-signing.ts';
import { ANCHOR_LOOK_INTERVAL_MS, anchorIfDue } from './anchor-task.ts';
import { createChunkPipeline } from './pipeline.ts';
import { PartitionOwnership } from './ownership.ts';
import { type WorkerContext, type WorkerDeps, type WorkerStats, createWorkerStats } from './worker-context.ts';
import { consumeBatch, drainLanes } from './lanes.ts';

export interface CommandWorker {
  readonly stats: WorkerStats;
  /** Which key it signs with, and whether every partition accepts it. */
  readonly signingKey: SigningKeyWatch;
  start(): Promise<void>;
  stop(): Promise<void>;
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
  const ownership = new PartitionOwnership(
    deps.pool,
    config.topics.commands,
    config.consumer.stateCache,
    config.consumer.batchCommandsMax,
    () => (stats.cachedWriteStatements += 1),
  );
  const pipeline = createChunkPipeline({
    ...deps,
    ownership,
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
  const anchorSigning = anchorSigner(config.anchors.signingKey);
  const anchors = new PeriodicTask(
    'anchors',
    config.anchors.intervalS > 0
      ? Math.min(ANCHOR_LOOK_INTERVAL_MS, config.anchors.intervalS * 1000)
      : ANCHOR_LOOK_INTERVAL_MS,
    () =>
      anchorIfDue(deps.pool, anchorSigning, config.anchors.intervalS, (messages) =>
        sink.sendCore([{ topic: config.topics.anchors, messages }]),
      ),
    log,
  );
  const ctx: WorkerContext = {
    ...deps,
    consumer,
    sink,
    pipeline,
    stats,
    commits: new OffsetCommitter(
      (offsets) => {
        stats.offsetCommits += 1;
        return consumer.commitOffsets([...offsets]);
      },
      config.consumer.commitIntervalMs,
      log,
    ),
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
    ctx.commits.retain(config.topics.commands, new Set(partitions));
    onAssignment(stats, partitions);
    ownership.assigned(partitions);
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
      ctx.commits.start();
      sweeper.start();
      parkedRetention.start();
      anchors.start();
      log.info({ topic: config.topics.commands, group: config.consumer.group }, 'command consumer started');
    },
    async stop() {
      for (const timer of ctx.resumeTimers) clearTimeout(timer);
      await sweeper.stop();
      await parkedRetention.stop();
      await anchors.stop();
      // Stop fetching, let the handlers in flight finish, publish and commit what they applied,
      // then leave the group: the next owner of each partition starts right after our last
      // committed offset.
      const held = [...(stats.assigned ?? [])];
      if (held.length > 0) consumer.pause([{ topic: config.topics.commands, partitions: held }]);
      ctx.running = false;
      try {
        await drainLanes(ctx, STOP_DRAIN_MS);
        await ctx.commits.stop();
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

function summary(stats: WorkerStats) {
  const { lag, paused, oldestUnappliedAt, assigned, ...counts } = stats;
  return { ...counts, paused: [...paused.keys()] };
}
