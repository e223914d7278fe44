-- Every caller's storage is bounded (issue 33).
--
-- Parked offsets are kept for good: a replay must skip them too, as the live run did. The
-- consumer keeps in memory only those not skipped yet, and per partition the highest skipped
-- one (src/consumer/parking.ts): both read through these partial indexes, whatever the table
-- holds. A park is deleted only once the log no longer holds its message (the command topic's
-- retention took it), when no consumer or replay can meet it again.
CREATE INDEX parked_offsets_pending ON parked_offsets (source_topic, source_partition, source_offset)
  WHERE skipped_at IS NULL;
CREATE INDEX parked_offsets_skipped ON parked_offsets (source_topic, source_partition, source_offset)
  WHERE skipped_at IS NOT NULL;

-- A bulk keeps only its valid items (an invalid one's error was answered, not kept), how many,
-- and is deleted BULK_BATCHES_RETENTION_S after it was sent; each caller may store at most
-- BULK_ITEMS_STORED_PER_HOUR_MAX items an hour (both indexes serve those two reads).
ALTER TABLE bulk_batches ADD COLUMN item_count integer NOT NULL DEFAULT 0 CHECK (item_count >= 0);
UPDATE bulk_batches SET item_count = jsonb_array_length(items);
CREATE INDEX bulk_batches_by_caller ON bulk_batches (principal_user_id, created_at);
CREATE INDEX bulk_batches_by_age ON bulk_batches (created_at);
