-- Who owns a command partition's writes: the consumer that claimed it last (claim_partition.sql),
-- known by the epoch the claim returned. A consumer keeps its partitions' state in memory between
-- chunks (src/ledger/state-cache.ts), so a consumer that lost a partition and has not noticed
-- yet must not write from that memory: every chunk's write names its epoch, and
-- ledger_commit_chunk refuses it (SQLSTATE LF001) once a newer claim has taken the partition.
CREATE TABLE partition_epochs (
  topic text NOT NULL,
  partition integer NOT NULL CHECK (partition >= 0),
  epoch bigint NOT NULL CHECK (epoch > 0),
  claimed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (topic, partition)
);

-- One write function, ledger_commit_chunk (sql/functions/), replaces these: freezes and the
-- chunk's rows are written by it, refunds by ledger_write_refunds with one json argument.
DROP FUNCTION IF EXISTS ledger_write_chunk(text[], text[], text[], bigint[], text[], text[], text[], integer[], bigint[], text[], text[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], text[], bigint[], bigint[], text[], bigint[], bigint[], bigint[], text[], bigint[], bigint[], bigint[], bigint[], text[], bigint[], text[], text[], integer[], bigint[], text[], bigint[], text[], text[], bigint[], text[], bigint[], boolean[], text[], bigint[], integer[], bigint[], bigint[], bigint[], bigint[], bigint[], json, integer);
DROP FUNCTION IF EXISTS ledger_write_freezes(bigint[], text[], bigint[], text[], boolean[], text[], text[], timestamptz);
DROP FUNCTION IF EXISTS ledger_write_refunds(bigint[], bigint[], bigint[], bigint[]);
