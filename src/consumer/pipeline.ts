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
import { emptyCounts, type Counts } from './counts.ts';
import { Outbox } from './outbox.ts';
import { markSkipped, parkedInRange, type PartitionRef } from './parking.ts';
import {
  type Context,
  type ItemResult,
  LIMITS_REPUBLISH_AFTER_MS,
  type Parked,
  type PipelineDeps,
  moveAside,
  onRetry,
  replyKeyOfMessage,
} from './pipeline-context.ts';
import { admitRepeats, inOffsetOrder, screen } from './screen.ts';
import { dropMismatchedSettles } from './settle-check.ts';
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
    if (segment.record)
      recorded = await applyLimitsRecord(ctx, source, segment.record, recorded, parked, outbox, counts);
    else await decideSegment(decideWith(ctx, recorded), source, segment.commands, parked, outbox, counts);
  }
  ctx.partitionLimits.advance(source, recorded, BigInt(messages.at(-1)!.offset) + 1n);
  if (ctx.recordLimits && ctx.partitionLimits.shouldPublish(source, ctx.own, Date.now()))
    outbox.derivedMessage(limitsRecordMessage(ctx.own, recorded.offset, source.partition, ctx.signer));
  if (parked.size > 0) await retrying(() => markSkipped(ctx.pool, source, [...parked.keys()]), parked.size, ctx.apply);
  return { outbox, counts, appliedAny: counts.applied + counts.settled > 0 };
}

async function decideSegment(
  ctx: Context,
  source: PartitionRef,
  messages: readonly KafkaMessage[],
  parked: Parked,
  outbox: Outbox,
  counts: Counts,
): Promise<void> {
  const { candidates: screened, suspects } = screen(ctx, source, messages, parked, outbox, counts);
  const admitted = await admitRepeats(ctx, source, suspects, outbox, counts);
  const candidates = await dropMismatchedSettles(
    ctx,
    source,
    inOffsetOrder([...screened, ...admitted]),
    outbox,
    counts,
  );
  const results = await commitCandidates(ctx, source.partition, candidates, counts);
  queueResults(ctx, source, results, outbox, counts);
}

/** Step 3: settles for applied transfers, replies for everything but settles, dead letters. */
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
