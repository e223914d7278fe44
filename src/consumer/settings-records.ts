import { INTERNAL_PROOF_HEADER } from '../commands/internal-proof.ts';
import type { ProofTrust } from '../commands/principal-proof.ts';
import {
  LIMITS_RECORD_TYPE,
  limitsRecordMessage,
  parseLimitsRecord,
  RECORD_TYPE_HEADER,
  type RecordedLimits,
} from '../commands/limits-record.ts';
import type { KafkaMessage } from '../kafka/client.ts';
import { retrying } from './apply.ts';
import { storeRecordedLimits } from './decision-limits.ts';
import type { PartitionRef } from './parking.ts';
import { type Context, type Parked, headerOf } from './pipeline-context.ts';
import { type Aside, parkedAside } from './screen.ts';

/**
 * This process's settings records for partitions just assigned to it whose stored settings are
 * missing or differ: published at once, so an idle partition also says which keys it accepts
 * (gateways and consumers choose their signing key from that), not only after its next chunk.
 */
export async function recordsOnAssignment(ctx: Context, topic: string, partitions: readonly number[]) {
  const records = [];
  for (const partition of partitions) {
    const supersedes = await ctx.partitionLimits.publishOnAssignment({ topic, partition }, ctx.own, Date.now());
    if (supersedes !== null) records.push(limitsRecordMessage(ctx.own, supersedes, partition, ctx.signer));
  }
  return records;
}

/** The context for deciding with the settings a partition recorded: its limits, and the proofs it trusts. */
export function decideWith(ctx: Context, recorded: RecordedLimits): Context {
  return { ...ctx, apply: { ...ctx.apply, limits: recorded.limits }, trust: trustOf(recorded) };
}

/**
 * The proofs a partition trusts at a point of its log: those made with a key its last record
 * accepted, and no v1 principal proofs; before any record with keys, any key and v1 too.
 */
export function trustOf(recorded: RecordedLimits): ProofTrust {
  return recorded.acceptedKeyIds === null
    ? { allowedKeyIds: null, v1: true }
    : { allowedKeyIds: new Set(recorded.acceptedKeyIds), v1: false };
}

export type Segment = { record: KafkaMessage; commands?: never } | { record?: never; commands: KafkaMessage[] };

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

export function isLimitsRecord(message: KafkaMessage): boolean {
  const type = headerOf(message, RECORD_TYPE_HEADER);
  return type !== undefined && String(type) === LIMITS_RECORD_TYPE;
}

/**
 * A limits record takes effect for the commands after it, if it is genuine and replaces the
 * record in force. A redelivered one (already in force, or older) changes nothing; a forged or
 * malformed one is dead-lettered; a genuine one that replaces another record (an old one copied
 * back, or two consumers racing during a rebalance) is ignored. The same in a replay. Returns
 * the limits in force after it, and the record as an aside when it is dead-lettered.
 */
export async function applyLimitsRecord(
  ctx: Context,
  source: PartitionRef,
  message: KafkaMessage,
  recorded: RecordedLimits,
  parked: Parked,
): Promise<{ recorded: RecordedLimits; aside?: Aside }> {
  const parking = parkedAside(message, parked);
  if (parking) return { recorded, aside: parking };
  const offset = BigInt(message.offset);
  if (offset <= recorded.offset) return { recorded };
  const parsed = parseLimitsRecord(
    message.value,
    headerOf(message, INTERNAL_PROOF_HEADER),
    ctx.signer,
    source.partition,
    trustOf(recorded).allowedKeyIds,
  );
  if (!parsed.ok)
    return {
      recorded,
      aside: { message, kind: 'forged', reason: { code: 'invalid_command', message: parsed.message } },
    };
  if (parsed.record.supersedes !== recorded.offset) {
    ctx.log.info(
      { partition: source.partition, offset: message.offset, supersedes: String(parsed.record.supersedes) },
      'a limits record that replaces a record no longer in force was ignored',
    );
    return { recorded };
  }
  // A record of format 1 says nothing of keys: the keys in force stay.
  const next: RecordedLimits = {
    limits: parsed.record.limits,
    acceptedKeyIds: parsed.record.acceptedKeyIds ?? recorded.acceptedKeyIds,
    offset,
  };
  await retrying(() => storeRecordedLimits(ctx.pool, source, next), 1, ctx.apply);
  ctx.log.info({ partition: source.partition, offset: message.offset, limits: next.limits }, 'limits record applied');
  return { recorded: next };
}
