/**
 * The settings a partition decides with, recorded in its own log: its limits and, since format
 * 2, the keys whose proofs it accepts. A decision that depended on
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
 * The keys: a message made by the service (a settle, an expire, a record, a command the gateway
 * attested) is accepted only if its proof was made with a key the partition accepted at that
 * offset. The consumer that owns the partition records its live keys (INTERNAL_COMMAND_SECRET and
 * _PREVIOUS) by id; a replay, however many older keys it is given (INTERNAL_COMMAND_KEYS), then
 * accepts at each offset exactly what the live run accepted there, so a key retired (or leaked)
 * before a message was written never makes the rebuild apply what the live run refused. Until a
 * partition's first record with keys, any key the process has is accepted, and principal proofs
 * of format v1 too (logs written before this release replay as they ran).
 *
 * A record is signed like a settle (internal-proof.ts), with a key the partition accepts at that
 * point, and names the offset of the record it replaces (`supersedes`, -1 for the first): a
 * genuine old record copied back onto the topic supersedes nothing in force, and is ignored.
 */
import { z } from 'zod';
import { INTERNAL_PROOF_HEADER, type InternalCommandSigner } from './internal-proof.ts';

/** The header that marks a message of the command topic as a record, not a command. */
export const RECORD_TYPE_HEADER = 'x-balance-record';
export const LIMITS_RECORD_TYPE = 'limits';
export const LIMITS_RECORD_KEY = '~limits';
/** Format 1 carried limits only; 2 adds the accepted keys. Both are read; 2 is written. */
const FORMAT_VERSION = 2;
/** The most key ids one record may list. */
const ACCEPTED_KEYS_MAX = 16;
const KEY_ID = /^[A-Za-z0-9_-]{8}$/;

export interface DecisionLimits {
  readonly amountMinorMax: number;
  readonly balanceMinorMax: number;
  readonly alertsPerUserMax: number;
}

/** What a partition decides with: its limits, and the ids of the keys it accepts (null: not recorded yet). */
export interface PartitionSettings {
  readonly limits: DecisionLimits;
  readonly acceptedKeyIds: readonly string[] | null;
}

/** The settings in force on a partition, and the offset of the record that set them (-1: none yet). */
export interface RecordedLimits extends PartitionSettings {
  readonly offset: bigint;
}

export function sameSettings(a: PartitionSettings, b: PartitionSettings): boolean {
  return (
    sameLimits(a.limits, b.limits) &&
    (a.acceptedKeyIds ?? []).join(',') === (b.acceptedKeyIds ?? []).join(',') &&
    (a.acceptedKeyIds === null) === (b.acceptedKeyIds === null)
  );
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
const common = {
  type: z.literal(LIMITS_RECORD_TYPE),
  supersedes: z.string().regex(/^(-1|0|[1-9][0-9]{0,18})$/),
  amount_minor_max: count(Number.MAX_SAFE_INTEGER).min(1),
  balance_minor_max: count(Number.MAX_SAFE_INTEGER).min(1),
  alerts_per_user_max: count(1_000),
};
const recordSchema = z.discriminatedUnion('version', [
  z.strictObject({ ...common, version: z.literal(1) }),
  z.strictObject({
    ...common,
    version: z.literal(2),
    accepted_keys: z
      .array(z.string().regex(KEY_ID))
      .min(1)
      .max(ACCEPTED_KEYS_MAX)
      .refine((ids) => ids.every((id, i) => i === 0 || ids[i - 1]! < id), 'must be sorted and distinct'),
  }),
]);

export interface LimitsRecord extends PartitionSettings {
  readonly supersedes: bigint;
}

/** The record that sets `settings` on `partition` in place of the one at `supersedes`, signed. */
export function limitsRecordMessage(
  settings: PartitionSettings & { readonly acceptedKeyIds: readonly string[] },
  supersedes: bigint,
  partition: number,
  signer: InternalCommandSigner,
): { key: string; value: string; partition: number; headers: Record<string, string> } {
  const { limits } = settings;
  const acceptedKeyIds = [...settings.acceptedKeyIds].sort();
  const record: LimitsRecord = { limits, acceptedKeyIds, supersedes };
  const proof = signer.signFields(fieldsOf(record, partition));
  const value = JSON.stringify({
    type: LIMITS_RECORD_TYPE,
    version: FORMAT_VERSION,
    supersedes: String(supersedes),
    amount_minor_max: limits.amountMinorMax,
    balance_minor_max: limits.balanceMinorMax,
    alerts_per_user_max: limits.alertsPerUserMax,
    accepted_keys: acceptedKeyIds,
  });
  return {
    key: LIMITS_RECORD_KEY,
    value,
    partition,
    headers: { [RECORD_TYPE_HEADER]: LIMITS_RECORD_TYPE, [INTERNAL_PROOF_HEADER]: proof },
  };
}

/**
 * A record with a valid proof for the partition it was read from, made with a key the partition
 * accepts now (`allowed`; null: any this process has), or why it is not one.
 */
export function parseLimitsRecord(
  value: Buffer | null,
  proof: string | Buffer | undefined,
  signer: InternalCommandSigner,
  partition: number,
  allowed: ReadonlySet<string> | null = null,
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
    acceptedKeyIds: parsed.data.version === 2 ? parsed.data.accepted_keys : null,
  };
  if (!signer.verifyFields(fieldsOf(record, partition, parsed.data.version), proof, allowed))
    return {
      ok: false,
      message:
        'A limits record without a valid proof from a key the partition accepts: only the consumer may publish one.',
    };
  return { ok: true, record };
}

/** What the proof covers: the record, and the partition it is for (a copy on another one proves nothing). */
function fieldsOf(record: LimitsRecord, partition: number, version: 1 | 2 = FORMAT_VERSION): string[] {
  const { limits } = record;
  const fields = [
    LIMITS_RECORD_TYPE,
    String(version),
    `partition=${partition}`,
    String(record.supersedes),
    String(limits.amountMinorMax),
    String(limits.balanceMinorMax),
    String(limits.alertsPerUserMax),
  ];
  return version === 1 ? fields : [...fields, `keys=${(record.acceptedKeyIds ?? []).join(',')}`];
}
