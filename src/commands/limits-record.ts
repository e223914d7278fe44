/**
 * The limits a partition decides with, recorded in its own log. A decision that depended on
 * the environment (AMOUNT_MINOR_MAX, BALANCE_MINOR_MAX, ALERTS_PER_USER_MAX) would be decided
 * otherwise by a replay run with other settings, and every later decision for that user would
 * diverge. So the consumer that owns a partition publishes a `limits` record to it whenever its
 * settings differ from the ones in force there, and every command is decided with the last
 * record before it in offset order: live and in a replay, the same limits.
 *
 * Until a partition's first record, commands are decided with the process's configured limits,
 * as they were before records existed: a log written before this release (or the first chunk
 * of a new partition) replays as it ran only with the limits it ran with. Built-in defaults
 * instead would have loosened an operator's lowered limits for the backlog at the upgrade.
 *
 * A record is signed like a settle (internal-proof.ts), and names the offset of the record it
 * replaces (`supersedes`, -1 for the first): a genuine old record copied back onto the topic
 * supersedes nothing in force, and is ignored.
 */
import { z } from 'zod';
import { INTERNAL_PROOF_HEADER, type InternalCommandSigner } from './internal-proof.ts';

/** The header that marks a message of the command topic as a record, not a command. */
export const RECORD_TYPE_HEADER = 'x-balance-record';
export const LIMITS_RECORD_TYPE = 'limits';
export const LIMITS_RECORD_KEY = '~limits';
const FORMAT_VERSION = 1;

export interface DecisionLimits {
  readonly amountMinorMax: number;
  readonly balanceMinorMax: number;
  readonly alertsPerUserMax: number;
}

/** The limits in force on a partition, and the offset of the record that set them (-1: none yet). */
export interface RecordedLimits {
  readonly limits: DecisionLimits;
  readonly offset: bigint;
}

export function decisionLimitsOf(limits: DecisionLimits): DecisionLimits {
  return {
    amountMinorMax: limits.amountMinorMax,
    balanceMinorMax: limits.balanceMinorMax,
    alertsPerUserMax: limits.alertsPerUserMax,
  };
}

export function sameLimits(a: DecisionLimits, b: DecisionLimits): boolean {
  return (
    a.amountMinorMax === b.amountMinorMax &&
    a.balanceMinorMax === b.balanceMinorMax &&
    a.alertsPerUserMax === b.alertsPerUserMax
  );
}

const count = (max: number) => z.number().int().min(0).max(max);
const recordSchema = z.strictObject({
  type: z.literal(LIMITS_RECORD_TYPE),
  version: z.literal(FORMAT_VERSION),
  supersedes: z.string().regex(/^(-1|0|[1-9][0-9]{0,18})$/),
  amount_minor_max: count(Number.MAX_SAFE_INTEGER).min(1),
  balance_minor_max: count(Number.MAX_SAFE_INTEGER).min(1),
  alerts_per_user_max: count(1_000),
});

export interface LimitsRecord {
  readonly limits: DecisionLimits;
  readonly supersedes: bigint;
}

/** The record that sets `limits` on `partition` in place of the one at `supersedes`, signed. */
export function limitsRecordMessage(
  limits: DecisionLimits,
  supersedes: bigint,
  partition: number,
  signer: InternalCommandSigner,
): { key: string; value: string; partition: number; headers: Record<string, string> } {
  const record: LimitsRecord = { limits, supersedes };
  const proof = signer.signFields(fieldsOf(record, partition));
  const value = JSON.stringify({
    type: LIMITS_RECORD_TYPE,
    version: FORMAT_VERSION,
    supersedes: String(supersedes),
    amount_minor_max: limits.amountMinorMax,
    balance_minor_max: limits.balanceMinorMax,
    alerts_per_user_max: limits.alertsPerUserMax,
  });
  return {
    key: LIMITS_RECORD_KEY,
    value,
    partition,
    headers: { [RECORD_TYPE_HEADER]: LIMITS_RECORD_TYPE, [INTERNAL_PROOF_HEADER]: proof },
  };
}

/** A record with a valid proof for the partition it was read from, or why it is not one. */
export function parseLimitsRecord(
  value: Buffer | null,
  proof: string | Buffer | undefined,
  signer: InternalCommandSigner,
  partition: number,
): { ok: true; record: LimitsRecord } | { ok: false; message: string } {
  let json: unknown;
  try {
    json = JSON.parse(value?.toString('utf8') ?? '');
  } catch {
    return { ok: false, message: 'A limits record that is not valid JSON.' };
  }
  const parsed = recordSchema.safeParse(json);
  if (!parsed.success) return { ok: false, message: 'A limits record that does not match its schema.' };
  const record: LimitsRecord = {
    supersedes: BigInt(parsed.data.supersedes),
    limits: {
      amountMinorMax: parsed.data.amount_minor_max,
      balanceMinorMax: parsed.data.balance_minor_max,
      alertsPerUserMax: parsed.data.alerts_per_user_max,
    },
  };
  if (!signer.verifyFields(fieldsOf(record, partition), proof))
    return { ok: false, message: 'A limits record without a valid proof: only the consumer may publish one.' };
  return { ok: true, record };
}

/** What the proof covers: the record, and the partition it is for (a copy on another one proves nothing). */
function fieldsOf(record: LimitsRecord, partition: number): string[] {
  const { limits } = record;
  return [
    LIMITS_RECORD_TYPE,
    String(FORMAT_VERSION),
    `partition=${partition}`,
    String(record.supersedes),
    String(limits.amountMinorMax),
    String(limits.balanceMinorMax),
    String(limits.alertsPerUserMax),
  ];
}
