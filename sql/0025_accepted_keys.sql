-- The keys each partition accepts, as its last settings record said (src/commands/limits-record.ts,
-- format 2): the ids of the keys whose proofs its consumer accepts at that point of the log. NULL
-- until the partition's first record with keys: then any key of the consumer's is accepted.
-- Gateways and consumers read the column to sign with a key every partition accepts
-- (src/signing-key-watch.ts), and a rebuild fills it again from the same records.
ALTER TABLE decision_limits ADD COLUMN accepted_key_ids text[]
  CHECK (accepted_key_ids IS NULL OR cardinality(accepted_key_ids) BETWEEN 1 AND 16);
