import { InternalCommandSigner, isInternalCommand } from '../commands/internal-proof.ts';
import { KeyRing } from '../commands/key-ring.ts';
import { PrincipalAttestation } from '../commands/principal-proof.ts';
import { decisionLimitsOf, limitsRecordMessage } from '../commands/limits-record.ts';
import { replyTopicPolicyOf, replyTopicProblem } from '../commands/reply-topics.ts';
import { type Command, consumerCommandSchema } from '../commands/schema.ts';
import type { KafkaMessage } from '../kafka/client.ts';
import { settlesOf } from '../ledger/core.ts';
import type { CommandReply } from '../ledger/outcome.ts';
import { retrying } from './apply.ts';
import { PartitionLimits } from './decision-limits.ts';
import { addCounts, emptyCounts, type Counts } from './counts.ts';
import { Outbox } from './outbox.ts';
import { markSkipped, parkedInRange, type PartitionRef } from './parking.ts';
import {
  type Context,
  type ItemResult,
  LIMITS_REPUBLISH_AFTER_MS,
  type PipelineDeps,
  moveAside,
  onRetry,
  replyKeyOfMessage,
} from './pipeline-context.ts';
import { type Aside, type Misrouted, screen } from './screen.ts';
import { prefetch } from './prefetch.ts';
import { judge } from './judge.ts';
import { commitCandidates } from './commit-step.ts';
import { applyLimitsRecord, decideWith, recordsOnAssignment, segmentsOf } from './settings-records.ts';

export interface ProcessedChunk {
  readonly outbox: Outbox;
  readonly counts: Counts;
  /** Whether any command was applied (for the `lastAppliedAt` figure). */
  readonly appliedAny: boolean;
}

export interface ChunkPipeline {
  process(source: PartitionRef, messages: readonly KafkaMessage[]): Promise<ProcessedChunk>;
  /** Settings records to publish to partitions just assigned (each with its own partition set). */
  recordsOnAssignment(topic: string, partitions: readonly number[]): Promise<ReturnType<typeof limitsRecordMessage>[]>;
}

export function createChunkPipeline(deps: PipelineDeps): ChunkPipeline {
  const mode = deps.mode ?? 'live';
  const keys = deps.keys ?? new KeyRing(deps.config.internalCommands, { withReplayKeys: mode === 'replay' });
  const context: Context = {
    ...deps,
    mode,
    // Neither the amount limit nor the reply-topic policy decides here: see decideWith and replyTarget.
    schema: consumerCommandSchema(),
    replyTopics: replyTopicPolicyOf(deps.config.topics),
    signer: new InternalCommandSigner(keys),
    attestation: new PrincipalAttestation(keys),
    apply: {
      consumer: deps.config.consumer,
      limits: decisionLimitsOf(deps.config.limits),
      log: deps.log,
      onRetry: () => onRetry(deps),
    },
    partitionLimits: new PartitionLimits(deps.pool, LIMITS_REPUBLISH_AFTER_MS, {
      limits: decisionLimitsOf(deps.config.limits),
      acceptedKeyIds: null,
    }),
    own: { limits: decisionLimitsOf(deps.config.limits), acceptedKeyIds: keys.liveIds() },
  };
  return {
    process: (source, messages) => processChunk(context, source, messages),
    recordsOnAssignment: (topic, partitions) => recordsOnAssignment(context, topic, partitions),
  };
}

/**
 * The chunk's driver: the only code that writes the chunk's outbox and counts. Each segment of
 * commands goes through four steps: screen (pure), prefetch (the reads the checks need), judge
 * (pure) and commit (the one write, deciding from the partition's cache); the driver then queues
 * what came of every message. The worker's lane then sends replies, events and settles, and
 * records the chunk's offset for the next commit (offset-committer.ts).
 */
async function processChunk(
  ctx: Context,
  source: PartitionRef,
  messages: readonly KafkaMessage[],
): Promise<ProcessedChunk> {
  const outbox = new Outbox(ctx.config.topics, ctx.config.consumer.kafkaBatchBytesMax);
  const counts = emptyCounts();
  if (messages.length === 0) return { outbox, counts, appliedAny: false };
  const first = messages[0]!.offset;
  const parked = await retrying(
    () =>
      ctx.parkedOffsets
        ? ctx.parkedOffsets.inRange(source, first, messages.at(-1)!.offset)
        : parkedInRange(ctx.pool, source, first, messages.at(-1)!.offset),
    messages.length,
    ctx.apply,
  );
  let recorded = await retrying(() => ctx.partitionLimits.current(source, first), 1, ctx.apply);
  // Commands between two limits records are decided together; a record changes the limits for
  // the commands after it, in offset order.
  for (const segment of segmentsOf(messages)) {
    if (segment.record) {
      const applied = await applyLimitsRecord(ctx, source, segment.record, recorded, parked);
      recorded = applied.recorded;
      if (applied.aside) recordAsides(ctx, source, [applied.aside], outbox, counts);
      continue;
    }
    const segmentCtx = decideWith(ctx, recorded);
    const screened = screen(segmentCtx, source, segment.commands, parked);
    recordAsides(ctx, source, screened.asides, outbox, counts);
    recordMisrouted(ctx, source, screened.misrouted, counts);
    const judged = judge(ctx.mode, screened, await prefetch(segmentCtx, screened));
    recordAsides(ctx, source, judged.asides, outbox, counts);
    const committed = await commitCandidates(segmentCtx, source.partition, judged.candidates);
    addCounts(counts, { ...emptyCounts(), ...committed.writes });
    queueResults(ctx, source, committed.results, outbox, counts);
  }
  ctx.partitionLimits.advance(source, recorded, BigInt(messages.at(-1)!.offset) + 1n);
  if (ctx.recordLimits && ctx.partitionLimits.shouldPublish(source, ctx.own, Date.now()))
    outbox.derivedMessage(limitsRecordMessage(ctx.own, recorded.offset, source.partition, ctx.signer));
  if (parked.size > 0) await retrying(() => markSkipped(ctx.pool, source, [...parked.keys()]), parked.size, ctx.apply);
  return { outbox, counts, appliedAny: counts.applied + counts.settled > 0 };
}

/** Dead-letters what screening and judging set aside, counts it, and answers what had an id. */
function recordAsides(
  ctx: Context,
  source: PartitionRef,
  asides: readonly Aside[],
  outbox: Outbox,
  counts: Counts,
): void {
  for (const { message, reason, kind, reply } of asides) {
    moveAside(ctx, source, message, outbox, counts, reason);
    if (kind === 'parked') counts.parked += 1;
    if (kind === 'forged') counts.forged += 1;
    if (reply) outbox.reply(reply.reply, reply.replyTo, reply.replyKey);
  }
}

function recordMisrouted(ctx: Context, source: PartitionRef, misrouted: readonly Misrouted[], counts: Counts): void {
  for (const { command, offset, expected } of misrouted) {
    counts.misrouted += 1;
    ctx.log.warn(
      { commandId: command.id, userId: command.user_id, partition: source.partition, offset, expected },
      "a command arrived on a partition other than its user's murmur2 partition: check the producer's key and partitioner",
    );
  }
}

/** Settles for applied transfers, replies for everything but settles, dead letters. */
function queueResults(
  ctx: Context,
  source: PartitionRef,
  results: readonly ItemResult[],
  outbox: Outbox,
  counts: Counts,
): void {
  for (const { candidate, reply, deadLetter, events, settleLegs } of results) {
    const { command } = candidate.item;
    if (deadLetter) moveAside(ctx, source, candidate.message, outbox, counts, deadLetter);
    count(counts, command, reply);
    if (!reply) continue;
    // A repeat may follow a crash after the commit but before the settles were published: it
    // publishes the legs still in flight again (the settle's derived id makes a copy a no-op).
    if (command.type === 'transfer' && settleLegs && settleLegs.length > 0) {
      for (const settle of settlesOf(command))
        if (settleLegs.includes(settle.user_id)) outbox.derive(settle, ctx.signer.sign(settle));
    }
    for (const event of events ?? []) outbox.event(event.userId, event.payload);
    // Internal commands (settles, expires) have no caller waiting for a reply.
    if (!isInternalCommand(command))
      outbox.reply(reply, replyTarget(ctx, command), replyKeyOfMessage(candidate.message));
  }
}

/**
 * Where a command's reply goes: its `reply_to` if today's policy allows it, else the default
 * reply topic. Checked here, after the decision, so a changed REPLY_TOPIC_PREFIX never changes
 * whether a command applies, live or in a replay.
 */
function replyTarget(ctx: Context, command: Command): string | undefined {
  const replyTo = 'reply_to' in command ? command.reply_to : undefined;
  if (replyTo === undefined || replyTopicProblem(replyTo, ctx.replyTopics) === null) return replyTo;
  ctx.log.warn(
    { commandId: command.id, replyTo },
    'reply_to is not an allowed reply topic; replied on the default one',
  );
  return undefined;
}

function count(counts: Counts, command: Command, reply: CommandReply | null): void {
  if (!reply) counts.unrecorded += 1;
  else if (reply.duplicate) counts.duplicates += 1;
  else if (reply.status === 'applied' && command.type === 'settle') counts.settled += 1;
  else if (reply.status === 'applied') counts.applied += 1;
  else {
    counts.rejected += 1;
    if (reply.code === 'unprocessable') counts.unprocessable += 1;
  }
}
