/**
 * The command consumer. For each fetched batch of a partition, in chunks of at most
 * `batchCommandsMax` messages:
 *   1. parse and validate every message (bad ones become dead letters);
 *   2. apply the valid commands in ONE PostgreSQL transaction (retried on lock conflicts);
 *   3. publish the replies and dead letters, and wait for Kafka's acknowledgement;
 *   4. only then commit the offset after the chunk.
 * A crash anywhere before 4 redelivers the chunk; the commands table turns every redelivered
 * command into a duplicate, so effects happen once and replies at least once.
 */
import type pg from 'pg';
import type { Config } from '../config.ts';
import { commandKey, createCommandSchema, type CommandSchema } from '../commands/schema.ts';
import { partitionOfKey } from '../kafka/partition.ts';
import { javaCompatiblePartitioner, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage, type Producer } from '../kafka/client.ts';
import type { BatchItem, BatchResult } from '../ledger/apply-batch.ts';
import { settleOf } from '../ledger/core.ts';
import { applyWithRetry } from './apply.ts';
import type { Logger } from '../log.ts';
import { deadLetterOf, Outbox } from './outbox.ts';
import { parseCommandMessage } from './parse-message.ts';

export interface WorkerDeps {
  readonly config: Config;
  readonly kafka: Kafka;
  readonly pool: pg.Pool;
  readonly log: Logger;
}

export interface WorkerStats {
  applied: number;
  /** Transfers completed on their recipient's partition (not counted in `applied`). */
  settled: number;
  rejected: number;
  duplicates: number;
  deadLettered: number;
  chunks: number;
  retries: number;
  /** When the first chunk started processing (ms since epoch), for throughput figures. */
  firstChunkAt: number | null;
  lastAppliedAt: number | null;
  /** Commands found on a partition other than their user's murmur2 partition (a producer with another partitioner). */
  misrouted: number;
  /** Messages behind the partition's high watermark after the last chunk, by partition. */
  readonly lag: Map<number, number>;
}

export interface CommandWorker {
  readonly stats: WorkerStats;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createCommandWorker(deps: WorkerDeps): CommandWorker {
  const { config, kafka, log } = deps;
  const schema = createCommandSchema(config.limits);
  const stats: WorkerStats = { applied: 0, settled: 0, rejected: 0, duplicates: 0, deadLettered: 0, chunks: 0, retries: 0, firstChunkAt: null, lastAppliedAt: null, misrouted: 0, lag: new Map() };
  const consumer = kafka.consumer({
    groupId: config.consumer.group,
    sessionTimeout: config.consumer.sessionTimeoutMs,
    rebalanceTimeout: 60_000,
    heartbeatInterval: Math.floor(config.consumer.sessionTimeoutMs / 10),
    maxWaitTimeInMs: 250,
    maxBytesPerPartition: 4 * 1024 * 1024,
    allowAutoTopicCreation: false,
    readUncommitted: false,
  });
  const producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false, createPartitioner: javaCompatiblePartitioner });
  const chunkDeps: ChunkDeps = { ...deps, schema, stats, producer, coreTopics: new Set([config.topics.replies, config.topics.deadLetters]), partitionCount: { value: 0 } };
  consumer.on(consumer.events.CRASH, (event) => {
    log.error({ err: event.payload.error, restart: event.payload.restart }, 'command consumer crashed; kafkajs restarts it from the last committed offset');
  });

  return {
    stats,
    async start() {
      await producer.connect();
      chunkDeps.partitionCount.value = await countPartitions(kafka, config.topics.commands);
      await consumer.connect();
      await consumer.subscribe({ topics: [config.topics.commands], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: config.consumer.partitionsConcurrent,
        eachBatch: (payload) => consumeBatch(payload, consumer, chunkDeps),
      });
      log.info({ topic: config.topics.commands, group: config.consumer.group }, 'command consumer started');
    },
    async stop() {
      // disconnect() lets the chunk in flight finish and leaves the group, so the next owner of
      // each partition starts right after our last committed offset.
      await consumer.disconnect();
      await producer.disconnect();
      log.info(stats, 'command consumer stopped');
    },
  };
}

interface ChunkDeps extends WorkerDeps {
  readonly schema: CommandSchema;
  readonly stats: WorkerStats;
  readonly producer: Producer;
  readonly coreTopics: ReadonlySet<string>;
  /** The command topic's partition count, read at start, to check where commands land. */
  readonly partitionCount: { value: number };
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
 * Chunks of one partition are applied strictly one after another, but the Kafka side of chunk
 * N (publishing its replies, then committing its offset) overlaps the database side of chunk
 * N+1: Node and PostgreSQL work at the same time. An offset is still committed only after its
 * chunk is both in PostgreSQL and acknowledged by Kafka, and in order.
 */
async function consumeBatch(payload: EachBatchPayload, consumer: Consumer, deps: ChunkDeps): Promise<void> {
  const { batch } = payload;
  const chunkSize = deps.config.consumer.batchCommandsMax;
  let previous: Promise<void> = Promise.resolve();
  for (let start = 0; start < batch.messages.length; start += chunkSize) {
    if (!payload.isRunning() || payload.isStale()) break;
    const chunk = batch.messages.slice(start, start + chunkSize);
    deps.stats.firstChunkAt ??= Date.now();
    const applying = applyChunk(batch.topic, batch.partition, chunk, deps);
    // If the previous chunk's publish fails we stop here; this chunk's transaction may still
    // commit, which is safe: redelivery turns it into duplicates.
    applying.catch(() => {});
    await previous;
    const outbox = await applying;
    const last = chunk.at(-1)!.offset;
    previous = (async () => {
      await outbox.flush(deps.producer, deps.coreTopics, deps.log);
      payload.resolveOffset(last);
      await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
      deps.stats.chunks += 1;
      deps.stats.lag.set(batch.partition, Math.max(0, Number(BigInt(batch.highWatermark) - BigInt(last) - 1n)));
      await payload.heartbeat();
    })();
    previous.catch(() => {});
  }
  await previous;
}

/** Parses a chunk, applies its valid commands in one transaction, and returns what to publish. */
async function applyChunk(topic: string, partition: number, chunk: readonly KafkaMessage[], deps: ChunkDeps): Promise<Outbox> {
  const outbox = new Outbox(deps.config.topics.replies, deps.config.topics.commands);
  const items: BatchItem[] = [];
  const replyTargets = new Map<string, string | undefined>();
  for (const message of chunk) {
    const parsed = parseCommandMessage(message.value, deps.schema);
    if (parsed.ok) {
      checkPartition(parsed.command, partition, message.offset, deps);
      items.push({ command: parsed.command, fingerprint: parsed.fingerprint, partition, offset: message.offset });
      replyTargets.set(parsed.command.id, 'reply_to' in parsed.command ? parsed.command.reply_to : undefined);
      continue;
    }
    outbox.add(deps.config.topics.deadLetters, deadLetterOf(message, { topic, partition }, parsed));
    if (parsed.commandId) outbox.reply(invalidReply(parsed.commandId, parsed.message), parsed.replyTo);
    deps.stats.deadLettered += 1;
    deps.log.warn({ topic, partition, offset: message.offset, code: parsed.code }, 'dead-lettered a bad message');
  }
  if (items.length > 0) {
    const result = await applyWithRetry(deps.pool, items, { consumer: deps.config.consumer, log: deps.log, onRetry: () => (deps.stats.retries += 1) });
    queueOutcomes(outbox, items, result, replyTargets);
    count(deps.stats, result);
  }
  return outbox;
}

/**
 * Replies for every command but settles (nobody waits for those), and the settle of every
 * applied transfer, new or repeated: a repeat may follow a crash that came after the commit
 * but before the settle was published, and the settle's derived id makes a second copy a no-op.
 */
function queueOutcomes(outbox: Outbox, items: readonly BatchItem[], result: BatchResult, replyTargets: ReadonlyMap<string, string | undefined>): void {
  items.forEach(({ command }, i) => {
    const reply = result.replies[i]!;
    if (command.type === 'transfer' && reply.status === 'applied') outbox.derive(settleOf(command));
    if (command.type !== 'settle') outbox.reply(reply, replyTargets.get(reply.command_id));
  });
}

/**
 * Per-user order holds only if every producer sends a user's commands to the same partition.
 * A command on the wrong one is still applied correctly (locks serialize it), but its order
 * relative to the user's other commands is no longer guaranteed, so it is counted and logged.
 */
function checkPartition(command: BatchItem['command'], partition: number, offset: string, deps: ChunkDeps): void {
  const count = deps.partitionCount.value;
  if (count === 0 || partitionOfKey(commandKey(command), count) === partition) return;
  deps.stats.misrouted += 1;
  deps.log.warn(
    { commandId: command.id, userId: command.user_id, partition, offset, expected: partitionOfKey(commandKey(command), count) },
    'a command arrived on a partition other than its user\'s murmur2 partition: check the producer\'s key and partitioner',
  );
}

function invalidReply(commandId: string, message: string) {
  return { command_id: commandId, status: 'rejected', code: 'invalid_command', message, duplicate: false, transactions: [], balances: {} } as const;
}

function count(stats: WorkerStats, result: BatchResult): void {
  stats.applied += result.applied;
  stats.settled += result.settled;
  stats.rejected += result.rejected;
  stats.duplicates += result.duplicates;
  if (result.applied + result.settled > 0) stats.lastAppliedAt = Date.now();
}
