/**
 * What the steps of the chunk pipeline (pipeline.ts) share: its dependencies and context, the
 * chunk's candidates and results, and how a message is moved aside or answered as invalid.
 */
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { InternalCommandSigner } from '../commands/internal-proof.ts';
import type { KeyRing } from '../commands/key-ring.ts';
import type { PrincipalAttestation, ProofTrust } from '../commands/principal-proof.ts';
import type { PartitionSettings } from '../commands/limits-record.ts';
import { REPLY_KEY_HEADER, replyKeyOf, type ReplyTopicPolicy } from '../commands/reply-topics.ts';
import type { CommandSchema } from '../commands/schema.ts';
import type { KafkaMessage } from '../kafka/client.ts';
import type { BatchItem } from '../ledger/apply-batch.ts';
import type { CommandReply } from '../ledger/outcome.ts';
import type { BalanceEventRow } from '../ledger/store/index.ts';
import type { Logger } from '../log.ts';
import type { ApplyOptions } from './apply.ts';
import type { PartitionOwnership } from './ownership.ts';
import type { DeadLetterReason } from './dead-letter.ts';
import type { PartitionLimits } from './decision-limits.ts';
import type { Counts } from './counts.ts';
import type { Outbox } from './outbox.ts';
import type { ParkedOffset, ParkedOffsetsSource, PartitionRef } from './parking.ts';

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
  /**
   * The partitions this consumer owns, with their epochs and caches: chunks are written fenced,
   * from the cache when it can. Absent (replay, tools): every chunk is written the sure way.
   */
  readonly ownership?: PartitionOwnership;
}

/** The chunk's parked offsets, by offset. */
export type Parked = ReadonlyMap<string, ParkedOffset>;

export interface Context extends PipelineDeps {
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
export const LIMITS_REPUBLISH_AFTER_MS = 30_000;

export function onRetry(deps: PipelineDeps): void {
  deps.onRetry?.();
  deps.keepAlive?.();
}

/** A valid command of the chunk, with the message it came in. */
export interface Candidate {
  readonly item: BatchItem;
  readonly message: KafkaMessage;
}

/** How a chunk was written: the commit step's tally, which the chunk's driver adds to its counts. */
export type WriteCounts = Pick<Counts, 'cachedWrites' | 'sureWrites' | 'cacheRefusals' | 'coldUsers'>;

export function noWrites(): WriteCounts {
  return { cachedWrites: 0, sureWrites: 0, cacheRefusals: 0, coldUsers: 0 };
}

export interface ItemResult {
  readonly candidate: Candidate;
  /** Null when nothing could be recorded (then nobody is answered: the command is undecided). */
  readonly reply: CommandReply | null;
  readonly deadLetter?: DeadLetterReason;
  /** The command's balance events (none unless applied). */
  readonly events?: readonly BalanceEventRow[];
  /** The recipients whose settles to publish (a transfer's, or a repeat's legs still in flight). */
  readonly settleLegs?: readonly number[];
}

export function moveAside(
  ctx: Context,
  source: PartitionRef,
  message: KafkaMessage,
  outbox: Outbox,
  counts: Counts,
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
export function headerOf(message: KafkaMessage, name: string): string | Buffer | undefined {
  const value = message.headers?.[name];
  return (Array.isArray(value) ? value[0] : value) ?? undefined;
}

/** The reply key the message's sender asked for (REPLY_KEY_HEADER), if it is a valid one. */
export function replyKeyOfMessage(message: KafkaMessage): string | null {
  return replyKeyOf(headerOf(message, REPLY_KEY_HEADER));
}

export function headersOf(message: KafkaMessage): Record<string, string | Buffer | undefined> {
  const out: Record<string, string | Buffer | undefined> = {};
  for (const name of Object.keys(message.headers ?? {})) out[name] = headerOf(message, name);
  return out;
}

export function invalidReply(commandId: string, message: string): CommandReply {
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
