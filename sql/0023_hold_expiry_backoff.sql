-- The hold-expiry sweeper's back-off lives with the hold, not in a sweeper's memory (issue 33).
--
-- A sweeper used to remember which expires it had sent in a map bounded at 10 batches: past that
-- (a stuck partition with thousands of due holds) it forgot, and sent every forgotten hold again
-- at each look, its back-off reset; and it paged past other consumers' due holds, so 10 pages of
-- theirs ahead of its own starved it. Now each open hold says when its expire is next due
-- (`expire_next_at`: its expiry, then the back-off after each copy) and how many copies went out,
-- and the partition whose consumer sends it: the one its reserve came from. A sweep reads only the
-- due holds of its own partitions, oldest first, by index, at any backlog.
ALTER TABLE reservations
  ADD COLUMN source_partition integer CHECK (source_partition >= 0),
  ADD COLUMN expire_copies integer NOT NULL DEFAULT 0 CHECK (expire_copies >= 0),
  ADD COLUMN expire_next_at timestamptz;

UPDATE reservations r SET source_partition = c.source_partition
FROM commands c WHERE c.id = r.reserve_command_id AND r.status = 'open';
UPDATE reservations SET expire_next_at = expires_at WHERE status = 'open' AND expires_at IS NOT NULL;

DROP INDEX reservations_expiring;
CREATE INDEX reservations_expire_due ON reservations (source_partition, expire_next_at)
  WHERE status = 'open' AND expire_next_at IS NOT NULL;
