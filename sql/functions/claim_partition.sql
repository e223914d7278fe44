-- A consumer given a command partition claims it before its first write: the epoch goes up by
-- one, and the write of any earlier owner is refused from then on (ledger_commit_chunk.sql). A
-- claim waits for a write in flight under the old epoch to end, so what the new owner reads next
-- includes it. Returns the new epoch.
CREATE OR REPLACE FUNCTION claim_partition(claim_topic text, claim_partition integer) RETURNS bigint
LANGUAGE sql
AS $$
  INSERT INTO partition_epochs AS e (topic, partition, epoch) VALUES (claim_topic, claim_partition, 1)
  ON CONFLICT (topic, partition) DO UPDATE SET epoch = e.epoch + 1, claimed_at = now()
  RETURNING e.epoch;
$$;
