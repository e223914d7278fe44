/**
 * Parked offsets: messages an operator told the consumer to skip (sql/0004_parked_offsets.sql).
 * The pipeline asks once per chunk, for the chunk's offset range, with one indexed query.
 */
import type pg from 'pg';

export interface ParkedOffset {
  readonly reason: string;
  readonly parkedBy: string;
}

export interface PartitionRef {
  readonly topic: string;
  readonly partition: number;
}

const SQL_PARKED_IN_RANGE = `
  SELECT source_offset, reason, parked_by FROM parked_offsets
  WHERE source_topic = $1 AND source_partition = $2 AND source_offset BETWEEN $3 AND $4`;
const SQL_MARK_SKIPPED = `
  UPDATE parked_offsets SET skipped_at = coalesce(skipped_at, now())
  WHERE source_topic = $1 AND source_partition = $2 AND source_offset = ANY($3::bigint[])`;
const SQL_PARK = `
  INSERT INTO parked_offsets (source_topic, source_partition, source_offset, reason, parked_by)
  VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING
  RETURNING parked_at`;
const SQL_LIST = `
  SELECT source_topic, source_partition, source_offset, reason, parked_by, parked_at, skipped_at
  FROM parked_offsets ORDER BY parked_at DESC LIMIT $1`;

/** Parked offsets between `first` and `last` (inclusive), by offset. */
export async function parkedInRange(
  db: pg.Pool,
  at: PartitionRef,
  first: string,
  last: string,
): Promise<Map<string, ParkedOffset>> {
  const { rows } = await db.query<{ source_offset: string; reason: string; parked_by: string }>({
    name: 'consumer_parked_in_range',
    text: SQL_PARKED_IN_RANGE,
    values: [at.topic, at.partition, first, last],
  });
  return new Map(rows.map((row) => [row.source_offset, { reason: row.reason, parkedBy: row.parked_by }]));
}

export async function markSkipped(db: pg.Pool, at: PartitionRef, offsets: readonly string[]): Promise<void> {
  if (offsets.length > 0)
    await db.query({
      name: 'consumer_mark_skipped',
      text: SQL_MARK_SKIPPED,
      values: [at.topic, at.partition, offsets],
    });
}

/** Parks one offset; false if it was already parked (the first reason stands). */
export async function park(
  db: pg.Pool,
  at: PartitionRef & { offset: string; reason: string; parkedBy: string },
): Promise<boolean> {
  const { rowCount } = await db.query(SQL_PARK, [at.topic, at.partition, at.offset, at.reason, at.parkedBy]);
  return rowCount === 1;
}

export interface ParkedRow {
  readonly source_topic: string;
  readonly source_partition: number;
  readonly source_offset: string;
  readonly reason: string;
  readonly parked_by: string;
  readonly parked_at: Date;
  readonly skipped_at: Date | null;
}

export async function listParked(db: pg.Pool, limit: number): Promise<ParkedRow[]> {
  return (await db.query<ParkedRow>(SQL_LIST, [limit])).rows;
}
