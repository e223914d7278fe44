/**
 * The chunk pipeline: what happens to a chunk of command-topic messages, the same for the live
 * consumer and for replay. It never throws because of what a message contains:
 *
 *   1. screen   parked offsets, unparsable or invalid messages, internal commands without a valid
 *               proof from a key the partition accepts at that offset, ~http: ids the gateway did
 *               not attest, and settles that do not match a leg of their transfer (or settle one
 *               already settled) become dead letters; a redelivered copy of a command already
 *               decided is answered as a duplicate first, whatever its proof;
 *   2. apply    the valid commands in one transaction. A transient failure is retried with
 *               backoff, then thrown (the caller pauses the partition; nothing is skipped). A
 *               deterministic one (the database refuses the data) splits the chunk in halves,
 *               down to the one command that fails, which is recorded as rejected
 *               `unprocessable`, answered and dead-lettered, while the others apply in offset
 *               order;
 *   3. queue    the settles of applied transfers (signed), the replies, and the dead letters, in an
 *               outbox that the caller flushes before committing the offsets.
 */
import type pg from 'pg';
import type { Config } from '../config.ts';
import { INTERNAL_PROOF_HEADER, InternalCommandSigner, isInternalCommand } from '../commands/internal-proof.ts';
import { KeyRing } from '../commands/key-ring.ts';
import { PrincipalAttestation, type ProofTrust } from '../commands/principal-proof.ts';
import {
  decisionLimitsOf,
  LIMITS_RECORD_TYPE,
  limitsRecordMessage,
  parseLimitsRecord,
  RECORD_TYPE_HEADER,
  type PartitionSettings,
  type RecordedLimits,
} from '../commands/limits-record.ts';
import {
  REPLY_KEY_HEADER,
  replyKeyOf,
  replyTopicPolicyOf,
  replyTopicProblem,
  type ReplyTopicPolicy,
} from '../commands/reply-topics.ts';
import {
  type Command,
  type CommandSchema,
  commandKey,
  consumerCommandSchema,
  parseHttpScopedId,
  settleIdOf,
  settleSourceOf,
} from '../commands/schema.ts';
import { pgErrorCode } from '../db/errors.ts';
import { failureKind } from '../failures.ts';
import type { KafkaMessage } from '../kafka/client.ts';
import { partitionOfKey } from '../kafka/partition.ts';
import { recordUnprocessable, type BatchItem } from '../ledger/apply-batch.ts';
import { RESULT_CODES, settlesOf } from '../ledger/core.ts';
import type { CommandReply } from '../ledger/outcome.ts';
import { findCommands, transferCredits, type BalanceEventRow } from '../ledger/store/index.ts';
import type { Logger } from '../log.ts';
import { applyWithRetry, retrying, type ApplyOptions } from './apply.ts';
import type { DeadLetterReason } from './dead-letter.ts';
import { PartitionLimits, storeRecordedLimits } from './decision-limits.ts';
import { Outbox } from './outbox.ts';
import { messageTimeMs, parseCommandMessage } from './parse-message.ts';
import {
  markSkipped,
  parkedInRange,
  type ParkedOffset,
  type ParkedOffsetsSource,
  type PartitionRef,
} from './parking.ts';

export interface PipelineDeps {
  readonly config: Config;
  readonly pool: pg.Pool;
  readonly log: Logger;
  /** Called between retries and bisection steps, so a long chunk keeps its group membership. */
  readonly keepAlive?: () => void;
  readonly onRetry?: () => void;
  /** The command topic's partition count, to spot commands on the wrong partition; 0 skips the check. */
  readonly partitionCount?: () => number;
  /**
   * Whether to publish this process's limits to a partition whose recorded ones differ (the
   * live consumer). A replay only reads the records that are in the log.
   */
  readonly recordLimits?: boolean;
  /** Where the parked offsets come from (the live consumer's watch); without it, a query per chunk. */
  readonly parkedOffsets?: ParkedOffsetsSource;
  /**
   * The process's keys, shared with whatever else signs in it (its SigningKeyWatch); by default
   * a ring of the configured live keys, or, in a replay, of every configured key.
   */
  readonly keys?: KeyRing;
  /**
   * `live`: the consumer, for whom a settle's transfer is always decided before the settle. A
   * `replay` runs partitions at their own pace, so a settle may come before its transfer.
   */
  readonly mode?: 'live' | 'replay';
}

/** What a chunk came to, counted once its outbox is flushed (or, in a replay, at once). */
export interface ChunkCounts {
  applied: number;
  /** Transfers completed on their recipient's partition (not counted in `applied`). */
  settled: number;
  rejected: number;
  duplicates: number;
  deadLettered: number;
  /** Rejected as `unprocessable`: the database refused the command (also in `rejected`). */
  unprocessable: number;
  /** Refused, and even the rejection could not be recorded: skipped, dead-lettered, alerted. */
  unrecorded: number;
  parked: number;
  /** Internal commands without a valid proof, or not matching their transfer. */
  forged: number;
  misrouted: number;
}

export function emptyCounts(): ChunkCounts {
  return {
    applied: 0,
    settled: 0,
    rejected: 0,
    duplicates: 0,
    deadLettered: 0,
    unprocessable: 0,
    unrecorded: 0,
    parked: 0,
    forged: 0,
    misrouted: 0,
  };
}

/** The chunk's parked offsets, by offset. */
type Parked = ReadonlyMap<string, ParkedOffset>;

const COUNT_KEYS = Object.keys(emptyCounts()) as Array<keyof ChunkCounts>;

/** Adds the counts of `more` to those of `into` (which may carry other fields too). */
export function addCounts(into: ChunkCounts, more: Readonly<ChunkCounts>): void {
  for (const key of COUNT_KEYS) into[key] += more[key];
}

export interface ProcessedChunk {
  readonly outbox: Outbox;
  readonly counts: ChunkCounts;
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
 * This process's settings records for partitions just assigned to it whose stored settings are
 * missing or differ: published at once, so an idle partition also says which keys it accepts
 * (gateways and consumers choose their signing key from that), not only after its next chunk.
 */
async function recordsOnAssignment(ctx: Context, topic: string, partitions: readonly number[]) {
  const records = [];
  for (const partition of partitions) {
    const supersedes = await ctx.partitionLimits.publishOnAssignment({ topic, partition }, ctx.own, Date.now());
    if (supersedes !== null) records.push(limitsRecordMessage(ctx.own, supersedes, partition, ctx.signer));
  }
  return records;
}

interface Context extends PipelineDeps {
  readonly mode: 'live' | 'replay';
  readonly schema: CommandSchema;
  readonly replyTopics: ReplyTopicPolicy;
  readonly signer: InternalCommandSigner;
  readonly attestation: PrincipalAttestation;
  /** The options of the current segment: `limits` are the ones its partition recorded. */
  readonly apply: ApplyOptions;
  readonly partitionLimits: PartitionLimits;
  /** This process's configured limits and live keys: what it records on the partitions it owns. */
  readonly own: PartitionSettings & { readonly acceptedKeyIds: readonly string[] };
  /** Which proofs the current segment trusts: the keys its partition accepted there (decideWith). */
  readonly trust?: ProofTrust;
}

/** How long a published limits record may take to come back before it is sent again. */
const LIMITS_REPUBLISH_AFTER_MS = 30_000;

function onRetry(deps: PipelineDeps): void {
  deps.onRetry?.();
  deps.keepAlive?.();
}

/** A valid command of the chunk, with the message it came in. */
interface Candidate {
  readonly item: BatchItem;
  readonly message: KafkaMessage;
}

interface ItemResult {
  readonly candidate: Candidate;
  /** Null when nothing could be recorded (then nobody is answered: the command is undecided). */
  readonly reply: CommandReply | null;
  readonly deadLetter?: DeadLetterReason;
  /** The command's balance events (none unless applied). */
  readonly events?: readonly BalanceEventRow[];
  /** The recipients whose settles to publish (a transfer's, or a repeat's legs still in flight). */
  readonly settleLegs?: readonly number[];
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
  counts: ChunkCounts,
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
  const results = await applyIsolating(ctx, candidates);
  queueResults(ctx, source, results, outbox, counts);
}

/** The context for deciding with the settings a partition recorded: its limits, and the proofs it trusts. */
function decideWith(ctx: Context, recorded: RecordedLimits): Context {
  return { ...ctx, apply: { ...ctx.apply, limits: recorded.limits }, trust: trustOf(recorded) };
}

/**
 * The proofs a partition trusts at a point of its log: those made with a key its last record
 * accepted, and no v1 principal proofs; before any record with keys, any key and v1 too.
 */
function trustOf(recorded: RecordedLimits): ProofTrust {
  return recorded.acceptedKeyIds === null
    ? { allowedKeyIds: null, v1: true }
    : { allowedKeyIds: new Set(recorded.acceptedKeyIds), v1: false };
}

type Segment = { record: KafkaMessage; commands?: never } | { record?: never; commands: KafkaMessage[] };

/** The chunk cut at its limits records: runs of commands, and each record on its own. */
export function segmentsOf(messages: readonly KafkaMessage[]): Segment[] {
  const segments: Segment[] = [];
  let commands: KafkaMessage[] = [];
  for (const message of messages) {
    if (!isLimitsRecord(message)) {
      commands.push(message);
      continue;
    }
    if (commands.length > 0) segments.push({ commands });
    commands = [];
    segments.push({ record: message });
  }
  if (commands.length > 0) segments.push({ commands });
  return segments;
}

function isLimitsRecord(message: KafkaMessage): boolean {
  const type = headerOf(message, RECORD_TYPE_HEADER);
  return type !== undefined && String(type) === LIMITS_RECORD_TYPE;
}

/**
 * A limits record takes effect for the commands after it, if it is genuine and replaces the
 * record in force. A redelivered one (already in force, or older) changes nothing; a forged or
 * malformed one is dead-lettered; a genuine one that replaces another record (an old one copied
 * back, or two consumers racing during a rebalance) is ignored. The same in a replay.
 */
async function applyLimitsRecord(
  ctx: Context,
  source: PartitionRef,
  message: KafkaMessage,
  recorded: RecordedLimits,
  parked: Parked,
  outbox: Outbox,
  counts: ChunkCounts,
): Promise<RecordedLimits> {
  if (movedAsideIfParked(ctx, source, message, parked, outbox, counts)) return recorded;
  const offset = BigInt(message.offset);
  if (offset <= recorded.offset) return recorded;
  const parsed = parseLimitsRecord(
    message.value,
    headerOf(message, INTERNAL_PROOF_HEADER),
    ctx.signer,
    source.partition,
    trustOf(recorded).allowedKeyIds,
  );
  if (!parsed.ok) {
    moveAside(ctx, source, message, outbox, counts, { code: 'invalid_command', message: parsed.message });
    counts.forged += 1;
    return recorded;
  }
  if (parsed.record.supersedes !== recorded.offset) {
    ctx.log.info(
      { partition: source.partition, offset: message.offset, supersedes: String(parsed.record.supersedes) },
      'a limits record that replaces a record no longer in force was ignored',
    );
    return recorded;
  }
  // A record of format 1 says nothing of keys: the keys in force stay.
  const next: RecordedLimits = {
    limits: parsed.record.limits,
    acceptedKeyIds: parsed.record.acceptedKeyIds ?? recorded.acceptedKeyIds,
    offset,
  };
  await retrying(() => storeRecordedLimits(ctx.pool, source, next), 1, ctx.apply);
  ctx.log.info({ partition: source.partition, offset: message.offset, limits: next.limits }, 'limits record applied');
  return next;
}

/** A valid command whose proof (or attestation) does not hold: forged, unless a copy was already decided. */
interface Suspect {
  readonly candidate: Candidate;
  readonly reason: string;
}

/**
 * Step 1: every message becomes a candidate, a suspect, or is moved aside (with a reply if it has
 * an id). No I/O: whether a suspect is a redelivered copy of a decided command is asked next.
 */
function screen(
  ctx: Context,
  source: PartitionRef,
  messages: readonly KafkaMessage[],
  parked: Parked,
  outbox: Outbox,
  counts: ChunkCounts,
): { candidates: Candidate[]; suspects: Suspect[] } {
  const candidates: Candidate[] = [];
  const suspects: Suspect[] = [];
  const trust = ctx.trust ?? { allowedKeyIds: null, v1: true };
  for (const message of messages) {
    if (movedAsideIfParked(ctx, source, message, parked, outbox, counts)) continue;
    const parsed = parseCommandMessage(message.value, ctx.schema, ctx.replyTopics);
    if (!parsed.ok) {
      moveAside(ctx, source, message, outbox, counts, parsed);
      if (parsed.commandId)
        outbox.reply(invalidReply(parsed.commandId, parsed.message), parsed.replyTo, replyKeyOfMessage(message));
      continue;
    }
    const internal = isInternalCommand(parsed.command);
    const principal = internal
      ? 'consumer'
      : ctx.attestation.principalOf(
          { id: parsed.command.id, fingerprint: parsed.fingerprint },
          headersOf(message),
          trust,
        );
    const candidate: Candidate = {
      item: {
        command: parsed.command,
        fingerprint: parsed.fingerprint,
        partition: source.partition,
        offset: message.offset,
        principal,
        messageTimeMs: messageTimeMs(message.timestamp),
      },
      message,
    };
    if (internal && !ctx.signer.verify(parsed.command, headerOf(message, INTERNAL_PROOF_HEADER), trust.allowedKeyIds)) {
      suspects.push({
        candidate,
        reason:
          'An internal command without a valid proof from a key this partition accepts: only the consumer may publish settles and expires.',
      });
      continue;
    }
    const squatted = squattedHttpId(parsed.command.id, principal);
    if (squatted) {
      suspects.push({ candidate, reason: squatted });
      continue;
    }
    checkPartition(ctx, parsed.command, source, message.offset, counts);
    candidates.push(candidate);
  }
  return { candidates, suspects };
}

/**
 * A suspect that is a copy of a command already decided with the same body (a redelivery after
 * its key was retired, or after a gateway's key changed) is answered as the duplicate it is;
 * every other one is dead-lettered as forged. A copy proves nothing a decided command did not
 * already settle, and answering it changes nothing.
 */
async function admitRepeats(
  ctx: Context,
  source: PartitionRef,
  suspects: readonly Suspect[],
  outbox: Outbox,
  counts: ChunkCounts,
): Promise<Candidate[]> {
  if (suspects.length === 0) return [];
  const ids = [...new Set(suspects.map((s) => s.candidate.item.command.id))];
  const decided = await retrying(() => findCommands(ctx.pool, ids), ids.length, ctx.apply);
  const admitted: Candidate[] = [];
  for (const { candidate, reason } of suspects) {
    const stored = decided.get(candidate.item.command.id);
    if (stored && stored.fingerprint === candidate.item.fingerprint) {
      admitted.push(candidate);
      continue;
    }
    moveAside(ctx, source, candidate.message, outbox, counts, { code: 'invalid_command', message: reason });
    counts.forged += 1;
  }
  return admitted;
}

function inOffsetOrder(candidates: Candidate[]): Candidate[] {
  return candidates.sort((a, b) => (BigInt(a.message.offset) < BigInt(b.message.offset) ? -1 : 1));
}

/**
 * `~http:<uid>:<key>` ids are the gateway's: caller uid's Idempotency-Key. Only a message the
 * gateway attested for that same uid may use one; a producer that took one first would own the
 * user's key (their request would then be answered with the producer's command).
 */
function squattedHttpId(commandId: string, principal: string): string | null {
  const scoped = parseHttpScopedId(commandId);
  if (!scoped || (/^(user|service|admin):[0-9]+$/.test(principal) && principal.endsWith(`:${scoped.userId}`)))
    return null;
  return "Ids that start with ~ are the service's own (~http: ids are callers' Idempotency-Keys, attested by the gateway); a producer must use its own ids.";
}

/** A message an operator parked is dead-lettered instead of being read (docs/operations.md). */
function movedAsideIfParked(
  ctx: Context,
  source: PartitionRef,
  message: KafkaMessage,
  parked: Parked,
  outbox: Outbox,
  counts: ChunkCounts,
): boolean {
  const parking = parked.get(message.offset);
  if (!parking) return false;
  moveAside(ctx, source, message, outbox, counts, {
    code: 'parked',
    message: `Parked by ${parking.parkedBy}: ${parking.reason}`,
  });
  counts.parked += 1;
  return true;
}

function moveAside(
  ctx: Context,
  source: PartitionRef,
  message: KafkaMessage,
  outbox: Outbox,
  counts: ChunkCounts,
  reason: DeadLetterReason,
): void {
  outbox.deadLetter(message, source, reason);
  counts.deadLettered += 1;
  ctx.log.warn(
    { topic: source.topic, partition: source.partition, offset: message.offset, code: reason.code },
    'dead-lettered a message',
  );
}

/** A header's first value. Kafka allows a null value (kafkajs passes it on as null): that is no value. */
function headerOf(message: KafkaMessage, name: string): string | Buffer | undefined {
  const value = message.headers?.[name];
  return (Array.isArray(value) ? value[0] : value) ?? undefined;
}

/** The reply key the message's sender asked for (REPLY_KEY_HEADER), if it is a valid one. */
function replyKeyOfMessage(message: KafkaMessage): string | null {
  return replyKeyOf(headerOf(message, REPLY_KEY_HEADER));
}

function headersOf(message: KafkaMessage): Record<string, string | Buffer | undefined> {
  const out: Record<string, string | Buffer | undefined> = {};
  for (const name of Object.keys(message.headers ?? {})) out[name] = headerOf(message, name);
  return out;
}

/**
 * A settle with a valid proof must still settle what its transfer moved, and each leg only once.
 * Live, the transfer is always in the database first, so a settle of an unknown transfer is
 * refused; in a replay it may not be there yet (partitions go at their own pace), and then the
 * proof alone decides. A leg has one settle id, but a transfer with one leg could be named two
 * ways (`~settle:<id>`, `~settle:<id>#<recipient>`): the first settle of a leg wins, and any
 * other id for the same leg is refused.
 */
async function dropMismatchedSettles(
  ctx: Context,
  source: PartitionRef,
  candidates: Candidate[],
  outbox: Outbox,
  counts: ChunkCounts,
): Promise<Candidate[]> {
  const settles = candidates.filter((c) => c.item.command.type === 'settle');
  if (settles.length === 0) return candidates;
  const transferIds = settles.map((c) => settleSourceOf(c.item.command.id).transferId);
  const credits = await retrying(() => transferCredits(ctx.pool, transferIds), settles.length, ctx.apply);
  const settledBy = await settlesOfLegs(ctx, settles, credits);
  return candidates.filter((candidate) => {
    const { command } = candidate.item;
    if (command.type !== 'settle') return true;
    const problem = settleProblem(ctx, command, credits, settledBy);
    if (problem === null) return true;
    moveAside(ctx, source, candidate.message, outbox, counts, { code: 'invalid_command', message: problem });
    counts.forged += 1;
    return false;
  });
}

type Credits = ReadonlyMap<string, ReadonlyArray<{ userId: number; amount: bigint }>>;

/** Why a settle must not apply, or null. Records the leg as settled by it when it may. */
function settleProblem(
  ctx: Context,
  settle: Extract<Command, { type: 'settle' }>,
  credits: Credits,
  settledBy: Map<string, string>,
): string | null {
  const { transferId, legRecipientId } = settleSourceOf(settle.id);
  const legs = credits.get(transferId);
  if (!legs) return ctx.mode === 'replay' ? null : 'The settle names a transfer that was never applied.';
  if (!settlesItsLeg(settle, legRecipientId, legs))
    return 'The settle does not match the transfer it settles (recipient or amount).';
  const leg = legKey(transferId, settle.user_id);
  const first = settledBy.get(leg);
  if (first !== undefined && first !== settle.id)
    return `The leg is already settled by ${first}: a leg has one settle.`;
  settledBy.set(leg, settle.id);
  return null;
}

/** The settle that already settled each leg of a one-leg transfer under its other id, by leg. */
async function settlesOfLegs(
  ctx: Context,
  settles: readonly Candidate[],
  credits: Credits,
): Promise<Map<string, string>> {
  const others: string[] = [];
  for (const { item } of settles) {
    const { transferId, legRecipientId } = settleSourceOf(item.command.id);
    const legs = credits.get(transferId);
    if (legs?.length !== 1) continue;
    others.push(legRecipientId === null ? settleIdOf(transferId, legs[0]!.userId) : settleIdOf(transferId));
  }
  const settledBy = new Map<string, string>();
  if (others.length === 0) return settledBy;
  const decided = await retrying(() => findCommands(ctx.pool, others), others.length, ctx.apply);
  for (const [id, stored] of decided) {
    if (stored.status !== 'applied') continue;
    const { transferId } = settleSourceOf(id);
    settledBy.set(legKey(transferId, credits.get(transferId)![0]!.userId), id);
  }
  return settledBy;
}

function legKey(transferId: string, recipientId: number): string {
  return `${transferId}\u001f${recipientId}`;
}

/**
 * Whether a settle moves exactly what its leg credited: a transfer to one recipient has one leg
 * and a settle id without a recipient; a split payment's settle names its leg's recipient.
 */
function settlesItsLeg(
  settle: Extract<Command, { type: 'settle' }>,
  legRecipientId: number | null,
  legs: ReadonlyArray<{ userId: number; amount: bigint }>,
): boolean {
  if (legRecipientId === null && legs.length !== 1) return false;
  const leg = legRecipientId === null ? legs[0] : legs.find((l) => l.userId === legRecipientId);
  return leg !== undefined && leg.userId === settle.user_id && leg.amount === settle.amount;
}

/**
 * Step 2. Applies the candidates in one transaction; if the database refuses the data, applies
 * each half on its own (first half first, so offset order holds), down to single commands.
 * k bad commands in n cost about 2k·log2(n) extra transactions; none costs nothing.
 */
async function applyIsolating(ctx: Context, candidates: readonly Candidate[]): Promise<ItemResult[]> {
  if (candidates.length === 0) return [];
  try {
    const result = await applyWithRetry(
      ctx.pool,
      candidates.map((c) => c.item),
      ctx.apply,
    );
    return candidates.map((candidate, i) => ({
      candidate,
      reply: result.replies[i]!,
      events: result.events[i],
      settleLegs: result.settleLegs[i],
    }));
  } catch (error) {
    if (failureKind(error) !== 'deterministic') throw error;
    ctx.keepAlive?.();
    if (candidates.length === 1) return [await isolate(ctx, candidates[0]!, error)];
    const middle = Math.ceil(candidates.length / 2);
    const first = await applyIsolating(ctx, candidates.slice(0, middle));
    return [...first, ...(await applyIsolating(ctx, candidates.slice(middle)))];
  }
}

/** Records one refused command as rejected `unprocessable`; if even that fails, skips it loudly. */
async function isolate(ctx: Context, candidate: Candidate, error: unknown): Promise<ItemResult> {
  const { command } = candidate.item;
  const sqlState = pgErrorCode(error);
  const message = unprocessableMessage(error);
  ctx.log.error(
    { err: error, commandId: command.id, offset: candidate.item.offset, sqlState },
    'the database refused a command; recording it as unprocessable',
  );
  try {
    if (!(await retrying(() => recordUnprocessable(ctx.pool, candidate.item, message), 1, ctx.apply))) {
      // Decided meanwhile by another consumer: answer from what it stored (a read, no writes).
      const stored = await applyWithRetry(ctx.pool, [candidate.item], ctx.apply);
      return { candidate, reply: stored.replies[0]! };
    }
  } catch (recordError) {
    if (failureKind(recordError) !== 'deterministic') throw recordError;
    ctx.log.fatal(
      {
        alert: 'unrecorded_command',
        err: recordError,
        commandId: command.id,
        partition: candidate.item.partition,
        offset: candidate.item.offset,
      },
      'OPERATOR ACTION NEEDED: the database refused a command and also its rejection; the command was dead-lettered and skipped without any record',
    );
    return {
      candidate,
      reply: null,
      deadLetter: { code: 'unrecorded', message, sqlState: pgErrorCode(recordError) ?? sqlState },
    };
  }
  const reply: CommandReply = {
    command_id: command.id,
    status: 'rejected',
    code: 'unprocessable',
    message,
    duplicate: false,
    fingerprint: candidate.item.fingerprint,
    transactions: [],
    balances: {},
  };
  return { candidate, reply, deadLetter: { code: 'unprocessable', message, sqlState } };
}

const SQLSTATE_CLASS_CAUSES: Record<string, string> = {
  '22': 'a value it cannot store',
  '23': 'a constraint the command violates',
  '54': 'a limit the command exceeds',
  LI: 'a ledger invariant it would break',
};

/** Names the cause for the caller, without the database's own message (which may quote data). */
export function unprocessableMessage(error: unknown): string {
  const sqlState = pgErrorCode(error);
  const cause = sqlState
    ? `the database refused it (SQLSTATE ${sqlState}: ${SQLSTATE_CLASS_CAUSES[sqlState.slice(0, 2)] ?? 'an error'})`
    : 'it would break a ledger invariant';
  return `${RESULT_CODES.unprocessable} Cause: ${cause}.`;
}

/** Step 3: settles for applied transfers, replies for everything but settles, dead letters. */
function queueResults(
  ctx: Context,
  source: PartitionRef,
  results: readonly ItemResult[],
  outbox: Outbox,
  counts: ChunkCounts,
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

function count(counts: ChunkCounts, command: Command, reply: CommandReply | null): void {
  if (!reply) counts.unrecorded += 1;
  else if (reply.duplicate) counts.duplicates += 1;
  else if (reply.status === 'applied' && command.type === 'settle') counts.settled += 1;
  else if (reply.status === 'applied') counts.applied += 1;
  else {
    counts.rejected += 1;
    if (reply.code === 'unprocessable') counts.unprocessable += 1;
  }
}

/**
 * Per-user order holds only if every producer sends a user's commands to the same partition.
 * A command on the wrong one is still applied correctly (locks serialize it), but its order
 * relative to the user's other commands is no longer guaranteed, so it is counted and logged.
 */
function checkPartition(
  ctx: Context,
  command: Command,
  source: PartitionRef,
  offset: string,
  counts: ChunkCounts,
): void {
  const partitions = ctx.partitionCount?.() ?? 0;
  if (partitions === 0 || partitionOfKey(commandKey(command), partitions) === source.partition) return;
  counts.misrouted += 1;
  ctx.log.warn(
    {
      commandId: command.id,
      userId: command.user_id,
      partition: source.partition,
      offset,
      expected: partitionOfKey(commandKey(command), partitions),
    },
    "a command arrived on a partition other than its user's murmur2 partition: check the producer's key and partitioner",
  );
}

function invalidReply(commandId: string, message: string): CommandReply {
  return {
    command_id: commandId,
    status: 'rejected',
    code: 'invalid_command',
    message,
    duplicate: false,
    fingerprint: null,
    transactions: [],
    balances: {},
  };
}
