/**
 * The watermark of acknowledged settles per partition (sql/0014_settles_published.sql): what
 * lets a poll call a transfer applied as soon as its settle is in the log, not only once the
 * settle has been applied on the recipient's partition.
 */
import type pg from 'pg';

// Only ever raised: a consumer that lost the partition and flushes late cannot lower it.
const SQL_RAISE = `
  INSERT INTO settles_published (source_partition, published_through) VALUES ($1, $2)
  ON CONFLICT (source_partition) DO UPDATE
    SET published_through = EXCLUDED.published_through, updated_at = now()
    WHERE settles_published.published_through < EXCLUDED.published_through`;

/** Every transfer of `partition` up to `offset` has its settle acknowledged by Kafka. */
export async function raiseSettlesPublished(db: pg.Pool, partition: number, offset: string): Promise<void> {
  await db.query({ name: 'consumer_settles_published', text: SQL_RAISE, values: [partition, offset] });
}
