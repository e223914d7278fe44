/**
 * The settings each partition decides with (src/commands/limits-record.ts): limits and accepted
 * keys, as the pipeline keeps them: in memory while it goes through a partition in order, and in
 * `decision_limits` (sql/0013, sql/0025) for whoever picks the partition up next, and for the
 * gateways and consumers choosing the key to sign with (src/signing-key-watch.ts).
 */
import type pg from 'pg';
import { sameSettings, type PartitionSettings, type RecordedLimits } from '../commands/limits-record.ts';
import type { PartitionRef } from './parking.ts';

const SQL_LOAD = `
  SELECT record_offset, amount_minor_max, balance_minor_max, alerts_per_user_max, accepted_key_ids FROM decision_limits
  WHERE source_topic = $1 AND source_partition = $2`;
// A redelivered record (a chunk processed again after a crash) never replaces a newer one.
const SQL_STORE = `
  INSERT INTO decision_limits
    (source_topic, source_partition, record_offset, amount_minor_max, balance_minor_max, alerts_per_user_max, accepted_key_ids)
  VALUES ($1, $2, $3, $4, $5, $6, $7)
  ON CONFLICT (source_topic, source_partition) DO UPDATE
    SET record_offset = EXCLUDED.record_offset, amount_minor_max = EXCLUDED.amount_minor_max,
        balance_minor_max = EXCLUDED.balance_minor_max, alerts_per_user_max = EXCLUDED.alerts_per_user_max,
        accepted_key_ids = EXCLUDED.accepted_key_ids, applied_at = now()
    WHERE decision_limits.record_offset < EXCLUDED.record_offset`;

/** The limits the partition's last applied record set; null before its first record. */
export async function loadRecordedLimits(db: pg.Pool, at: PartitionRef): Promise<RecordedLimits | null> {
  const { rows } = await db.query<{
    record_offset: string;
    amount_minor_max: string;
    balance_minor_max: string;
    alerts_per_user_max: number;
    accepted_key_ids: string[] | null;
  }>({ name: 'consumer_decision_limits', text: SQL_LOAD, values: [at.topic, at.partition] });
  const row = rows[0];
  if (!row) return null;
  return {
    offset: BigInt(row.record_offset),
    limits: {
      amountMinorMax: Number(row.amount_minor_max),
      balanceMinorMax: Number(row.balance_minor_max),
      alertsPerUserMax: row.alerts_per_user_max,
    },
    acceptedKeyIds: row.accepted_key_ids,
  };
}

export async function storeRecordedLimits(db: pg.Pool, at: PartitionRef, recorded: RecordedLimits): Promise<void> {
  const { limits } = recorded;
  await db.query({
    name: 'consumer_store_decision_limits',
    text: SQL_STORE,
    values: [
      at.topic,
      at.partition,
      String(recorded.offset),
      limits.amountMinorMax,
      limits.balanceMinorMax,
      limits.alertsPerUserMax,
      recorded.acceptedKeyIds,
    ],
  });
}

interface Known {
  recorded: RecordedLimits;
  /** The offset after the last message this process went through on the partition. */
  nextOffset: bigint;
  /** When this process last published a record to the partition (0: not since it last matched). */
  publishedAtMs: number;
}

/**
 * What this process knows of each partition's settings. It is trusted only while the process
 * goes through the partition without a gap: a chunk that does not start where the last one
 * ended (another consumer had the partition meanwhile) loads the settings from the database.
 */
export class PartitionLimits {
  private readonly known = new Map<string, Known>();
  /** When this process last published a record to a partition it has no chunk of yet (on assignment). */
  private readonly publishedEarlyAtMs = new Map<string, number>();

  constructor(
    private readonly db: pg.Pool,
    /** How long a published record may take to come back before it is published again. */
    private readonly republishAfterMs: number,
    /**
     * What a partition decides with before its first record: this process's configured limits,
     * and any key it has (acceptedKeyIds null).
     */
    private readonly beforeFirstRecord: PartitionSettings,
  ) {}

  async current(at: PartitionRef, firstOffset: string): Promise<RecordedLimits> {
    const known = this.known.get(keyOf(at));
    if (known && known.nextOffset === BigInt(firstOffset)) return known.recorded;
    const recorded = (await loadRecordedLimits(this.db, at)) ?? { ...this.beforeFirstRecord, offset: -1n };
    const publishedAtMs = this.publishedEarlyAtMs.get(keyOf(at)) ?? 0;
    this.known.set(keyOf(at), { recorded, nextOffset: BigInt(firstOffset), publishedAtMs });
    return recorded;
  }

  /**
   * Whether to publish this process's settings to a partition just assigned to it, before any
   * chunk of it (an idle partition would otherwise never say which keys it accepts): when its
   * stored record is missing or differs, and none was published lately. Returns the record to
   * supersede, or null for no record now.
   */
  async publishOnAssignment(at: PartitionRef, own: PartitionSettings, nowMs: number): Promise<bigint | null> {
    const stored = await loadRecordedLimits(this.db, at);
    if (stored && sameSettings(stored, own)) return null;
    const last = this.known.get(keyOf(at))?.publishedAtMs || this.publishedEarlyAtMs.get(keyOf(at)) || 0;
    if (last > 0 && nowMs - last < this.republishAfterMs) return null;
    this.publishedEarlyAtMs.set(keyOf(at), nowMs);
    return stored?.offset ?? -1n;
  }

  /** After a chunk: the limits in force at its end, and where the next chunk should start. */
  advance(at: PartitionRef, recorded: RecordedLimits, nextOffset: bigint): void {
    const previous = this.known.get(keyOf(at));
    const publishedAtMs = previous && previous.recorded.offset === recorded.offset ? previous.publishedAtMs : 0;
    this.known.set(keyOf(at), { recorded, nextOffset, publishedAtMs });
  }

  /**
   * Whether this process should publish its own limits to the partition now: the partition has
   * no record yet, or its record differs from them, and this process has not published them
   * recently (a record on its way is not doubled; one that was lost is sent again).
   */
  shouldPublish(at: PartitionRef, own: PartitionSettings, nowMs: number): boolean {
    const known = this.known.get(keyOf(at));
    if (!known || (known.recorded.offset >= 0n && sameSettings(known.recorded, own))) return false;
    if (known.publishedAtMs > 0 && nowMs - known.publishedAtMs < this.republishAfterMs) return false;
    known.publishedAtMs = nowMs;
    return true;
  }
}

function keyOf(at: PartitionRef): string {
  return `${at.partition}\u001f${at.topic}`;
}
