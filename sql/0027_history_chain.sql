-- A tamper-evident history (docs/history-chain.md).
--
-- Each user's balance events form a SHA-256 chain: the link of version v is
--   hash_v = SHA-256(hash_(v-1) || the event payloads of version v, part order, joined by "\n")
-- with 32 zero bytes before the first event. The hash is stored on the balance event (part 0)
-- and the user's head (the hash of their latest event) on their available account, beside
-- `version`, so the consumer that owns the user's partition writes the next link from memory.
ALTER TABLE balance_events ADD COLUMN hash bytea CHECK (hash IS NULL OR octet_length(hash) = 32);
ALTER TABLE accounts ADD COLUMN chain_hash bytea CHECK (chain_hash IS NULL OR octet_length(chain_hash) = 32);

-- Anchors: a signed Merkle root over every user's head (user id, version, hash) at one instant,
-- published to TOPIC_ANCHORS. Only the latest anchor's leaves and tree are kept (for proofs and
-- `npm run verify`); older anchors keep their root and signature, which is what a third party
-- keeps too.
CREATE TABLE anchors (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  root bytea NOT NULL CHECK (octet_length(root) = 32),
  users bigint NOT NULL CHECK (users >= 0),
  key_id text NOT NULL CHECK (char_length(key_id) BETWEEN 1 AND 100),
  signature bytea NOT NULL CHECK (octet_length(signature) = 64),
  created_at timestamptz NOT NULL,
  published_at timestamptz
);
CREATE INDEX anchors_unpublished ON anchors (id) WHERE published_at IS NULL;

CREATE TABLE anchor_leaves (
  anchor_id bigint NOT NULL REFERENCES anchors (id) ON DELETE CASCADE,
  leaf_index bigint NOT NULL CHECK (leaf_index >= 0),
  user_id bigint NOT NULL,
  version bigint NOT NULL,
  hash bytea NOT NULL,
  PRIMARY KEY (anchor_id, user_id)
);

-- Every level of the latest anchors' trees, each the concatenation of its 32-byte nodes; stored
-- uncompressed so a proof reads its sibling at each level with a substring, not the whole level.
CREATE TABLE anchor_levels (
  anchor_id bigint NOT NULL REFERENCES anchors (id) ON DELETE CASCADE,
  level integer NOT NULL CHECK (level >= 0),
  nodes bytea NOT NULL,
  PRIMARY KEY (anchor_id, level)
);
ALTER TABLE anchor_levels ALTER COLUMN nodes SET STORAGE EXTERNAL;

-- History rows from before balance events existed (sql/0008) have no event to be held against:
-- `npm run verify` leaves the rows below this id alone, and reports any newer row without one.
CREATE TABLE history_chain_start (legacy_rows_below bigint NOT NULL);
INSERT INTO history_chain_start
SELECT coalesce(max(t.id) + 1, 0) FROM transactions t
WHERE NOT EXISTS (SELECT 1 FROM balance_events e WHERE e.command_id = t.command_id AND e.part = 0);

-- The events written before this migration get their links now, user by user, in version order,
-- and each user's head once. Consumers must be stopped while it runs (docs/operations.md): the
-- lock makes a consumer that was not wait, instead of writing an event this loop does not see.
LOCK TABLE balance_events, accounts IN SHARE ROW EXCLUSIVE MODE;
DO $$
DECLARE
  r record;
  prev bytea;
  current_user_id bigint := NULL;
BEGIN
  FOR r IN
    SELECT user_id, sequence, string_agg(payload, E'\n' ORDER BY part) AS bytes
    FROM balance_events GROUP BY user_id, sequence ORDER BY user_id, sequence
  LOOP
    IF current_user_id IS DISTINCT FROM r.user_id THEN
      IF current_user_id IS NOT NULL THEN
        UPDATE accounts SET chain_hash = prev WHERE kind = 'user_available' AND owner_id = current_user_id AND stripe = 0;
      END IF;
      prev := decode(repeat('00', 32), 'hex');
      current_user_id := r.user_id;
    END IF;
    prev := sha256(prev || convert_to(r.bytes, 'UTF8'));
    UPDATE balance_events SET hash = prev WHERE user_id = r.user_id AND sequence = r.sequence AND part = 0;
  END LOOP;
  IF current_user_id IS NOT NULL THEN
    UPDATE accounts SET chain_hash = prev WHERE kind = 'user_available' AND owner_id = current_user_id AND stripe = 0;
  END IF;
END
$$;
