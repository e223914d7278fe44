-- Everything one or more decided chunks write, as one statement: called on its own (autocommit)
-- it is their whole transaction, one round trip; the consumer merges the chunks its partitions
-- decided at the same time into one call (src/ledger/chunk-writer.ts), since a statement's fixed
-- cost is most of a small chunk's. The fallback path calls it for one chunk inside the
-- transaction that loaded and locked the chunk's state (src/ledger/apply-batch.ts). Either way it refuses the
-- whole write, and so rolls all of it back, when the state it was decided on is not the state
-- in the database:
--   LF001  a partition's epoch is no longer the writer's: another consumer claimed the
--          partition (claim_partition.sql), so this one writes nothing (DETAIL: the partitions);
--   LD001  a command of the chunk was decided already (a duplicate the writer did not know of):
--          raised as the unique violation of commands_pkey, which the caller reads as LD001;
--   LS001  a user account's balance or version is not the one the decision started from (a
--          row changed behind the consumer's cache; DETAIL: the account ids);
--   LC001  a balance event comes without its history-chain link: the writer is a consumer from
--          before sql/0027, and must be replaced, not retried into a broken chain.
-- The consumer reads the rows involved again and decides those chunks again, and writes the
-- others without them; a refused write is never partly applied.
--
-- Inputs are one json value per table (amounts, balances and versions as strings, so no number
-- above 2^53 is rounded on the way), read with json_to_recordset: typed by the column list
-- below, matched by name, not by position.
--
-- Lock order: the partition's epoch row first, then the chunk's user accounts in ascending id
-- order (the caller sorts them; only the partition's own consumer writes them), then the
-- reservations it closes, then the shared accounts (incoming, external and revenue stripes),
-- locked one by one in id order by a CTE and changed by a delta.
--
-- The chunk's time is clock_timestamp() taken after the user accounts are locked: a later chunk
-- of the same account never gets an earlier time (sql/0006_balances_at.sql). Transaction ids are
-- allocated in the order of the given rows and returned in that order; the ids of the
-- reservations opened come back paired with the command that opened each.
-- Each update of an existing table is bounded by the chunk's keys (`= ANY(...)` beside the join):
-- a join to a record set alone may be planned as a scan of the whole table, and a generic plan
-- keeps that shape as the table grows (sql/0021_cached_chunk_plans.sql;
-- tests/ledger/store/cached-plans.int.test.ts holds it). One exception, the largest update:
-- the user accounts' is bounded by the rows `matched` locked, whose ids drive the probes, and
-- carries no `= ANY` beside the join key, because PostgreSQL 15 sorts that array again for every
-- probe: that made the update of a 1,700-account chunk take 76 ms instead of 9.
-- The signature before deposits and withdrawals named their service (sql/0028).
DROP FUNCTION IF EXISTS ledger_commit_chunk(json, json, json, json, json, json, json, text[], json, json, json, json, json, json, json, bigint[]);

CREATE OR REPLACE FUNCTION ledger_commit_chunk(
  fences json,
  commands json, postings json, transactions json,
  reservations_opened json, reservations_closed json,
  alert_upserts json, alert_deletes text[], alert_counts json,
  user_accounts json, shared_deltas json,
  refunds json, freeze_accounts json, freeze_changes json,
  events json,
  report_user_ids bigint[],
  external_payments json,
  OUT written_at timestamptz,
  OUT transaction_ids bigint[],
  OUT opened_reservations json,
  OUT reported json
)
LANGUAGE plpgsql
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  n integer;
  user_ids bigint[];
  shared_ids bigint[];
  closed_ids bigint[];
  refused json;
  -- A variable, not a literal: a generic plan sees a parameter, so the partial indexes on open
  -- reservations (whose predicate a literal 'open' would match) are not candidates for the scan
  -- by id, and the planner cannot pick one with no condition that reads every open reservation.
  open_status CONSTANT text := 'open';
BEGIN
  -- Every partition the write carries chunks of must still be at the writer's epoch; their rows
  -- are locked in (topic, partition) order, so a claim waits for this write and not the reverse.
  IF json_array_length(fences) > 0 THEN
    SELECT json_agg(f.partition ORDER BY f.topic, f.partition) INTO refused
    FROM json_to_recordset(fences) AS f(topic text, partition integer, epoch bigint)
    LEFT JOIN LATERAL (
      SELECT e.epoch FROM partition_epochs e WHERE e.topic = f.topic AND e.partition = f.partition FOR UPDATE
    ) e ON true
    WHERE e.epoch IS DISTINCT FROM f.epoch;
    IF refused IS NOT NULL THEN
      RAISE EXCEPTION 'partitions % are no longer owned at the writer''s epochs', refused
        USING ERRCODE = 'LF001', DETAIL = refused::text;
    END IF;
  END IF;

  -- A plain insert: a command decided already fails it on commands_pkey (unique_violation), which
  -- the caller reads as LD001. ON CONFLICT DO NOTHING and a count cost a speculative insertion
  -- per row, on the hottest table.
  INSERT INTO commands (id, fingerprint, type, user_id, status, code, message, source_partition, source_offset, principal)
  SELECT * FROM json_to_recordset(commands) AS k(id text, fingerprint text, type text, user_id bigint, status text,
                                                 code text, message text, partition integer, "offset" bigint, principal text);

  -- The user accounts the chunk decided on, each where it still holds what the decision started
  -- from; unchanged ones are locked and compared, changed ones updated in the same pass.
  user_ids := ARRAY(SELECT (x->>'id')::bigint FROM json_array_elements(user_accounts) AS x);
  IF cardinality(user_ids) > 0 THEN
    WITH k AS (
      SELECT * FROM json_to_recordset(user_accounts)
        AS k(id bigint, expected_balance bigint, expected_version bigint, balance bigint, version bigint, chain_hash text)
    ), matched AS (
      SELECT a.id FROM accounts a JOIN k ON k.id = a.id
      WHERE a.id = ANY(user_ids) AND a.balance = k.expected_balance
        AND (k.expected_version IS NULL OR a.version = k.expected_version)
      ORDER BY a.id
      FOR NO KEY UPDATE OF a
    ), changed AS (
      UPDATE accounts a SET balance = k.balance, version = coalesce(k.version, a.version),
                            chain_hash = coalesce(decode(k.chain_hash, 'hex'), a.chain_hash), updated_at = now()
      FROM k JOIN matched m ON m.id = k.id
      WHERE a.id = k.id
        AND (k.balance <> k.expected_balance OR k.version IS DISTINCT FROM k.expected_version)
      RETURNING a.id
    )
    SELECT json_agg(k.id ORDER BY k.id) INTO refused FROM k WHERE k.id NOT IN (SELECT id FROM matched);
    IF refused IS NOT NULL THEN
      RAISE EXCEPTION 'user accounts % changed since the chunk was decided', refused
        USING ERRCODE = 'LS001', DETAIL = refused::text;
    END IF;
  END IF;

  written_at := clock_timestamp();
  transaction_ids := ARRAY(
    SELECT nextval('transactions_id_seq') FROM generate_series(1, json_array_length(transactions)));

  INSERT INTO postings
    (command_id, debit_account_id, credit_account_id, amount, debit_balance_after, credit_balance_after, version_after, created_at)
  SELECT k.*, written_at
  FROM json_to_recordset(postings) AS k(command_id text, debit_account_id bigint, credit_account_id bigint, amount bigint,
                                        debit_balance_after bigint, credit_balance_after bigint, version_after bigint);

  INSERT INTO transactions (id, command_id, user_id, amount, transaction_type, service_id, order_id, counterparty_id, comment, created_at)
  SELECT transaction_ids[k.n], k.command_id, k.user_id, k.amount, k.type, k.service_id, k.order_id, k.counterparty_id,
         k.comment, written_at
  FROM ROWS FROM (
    json_to_recordset(transactions) AS (command_id text, user_id bigint, amount bigint, type text, service_id bigint,
                                        order_id bigint, counterparty_id bigint, comment text)
  ) WITH ORDINALITY AS k(command_id, user_id, amount, type, service_id, order_id, counterparty_id, comment, n);

  IF json_array_length(reservations_opened) > 0 THEN
    WITH inserted AS (
      INSERT INTO reservations (user_id, service_id, order_id, amount, status, captured_amount, reserve_command_id,
                                close_command_id, closed_at, expires_at, source_partition, expire_next_at)
      SELECT k.user_id, k.service_id, k.order_id, k.amount, k.status, k.captured_amount, k.reserve_command_id,
             k.close_command_id, CASE WHEN k.status = 'open' THEN NULL ELSE now() END,
             now() + make_interval(secs => k.expires_in_s), k.source_partition,
             now() + make_interval(secs => k.expires_in_s)
      FROM json_to_recordset(reservations_opened)
        AS k(user_id bigint, service_id bigint, order_id bigint, amount bigint, status text, captured_amount bigint,
             reserve_command_id text, close_command_id text, expires_in_s integer, source_partition integer)
      RETURNING id, reserve_command_id
    )
    SELECT json_agg(json_build_object('id', id, 'reserve_command_id', reserve_command_id)) INTO opened_reservations
    FROM inserted;
  END IF;

  IF json_array_length(reservations_closed) > 0 THEN
    closed_ids := ARRAY(SELECT (x->>'id')::bigint FROM json_array_elements(reservations_closed) AS x);
    UPDATE reservations r
    SET status = k.status, captured_amount = k.captured_amount, close_command_id = k.close_command_id, closed_at = now()
    FROM json_to_recordset(reservations_closed) AS k(id bigint, status text, captured_amount bigint, close_command_id text)
    WHERE r.id = k.id AND r.id = ANY(closed_ids) AND r.status = open_status;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n <> cardinality(closed_ids) THEN
      -- The chunk's user accounts are as it was decided on, so its holds are too, unless something
      -- outside the ledger changed them: an invariant broken, the same on every try.
      RAISE EXCEPTION 'closed % of % reservations', n, cardinality(closed_ids) USING ERRCODE = 'LI001';
    END IF;
  END IF;

  IF json_array_length(refunds) > 0 THEN
    PERFORM ledger_write_refunds(refunds);
  END IF;

  IF json_array_length(alert_upserts) > 0 THEN
    INSERT INTO balance_alerts (id, user_id, direction, threshold, past)
    SELECT * FROM json_to_recordset(alert_upserts) AS k(id text, user_id bigint, direction text, threshold bigint, past boolean)
    ON CONFLICT (id) DO UPDATE SET past = excluded.past;
  END IF;
  IF cardinality(alert_deletes) > 0 THEN
    DELETE FROM balance_alerts WHERE id = ANY(alert_deletes);
  END IF;
  IF json_array_length(alert_counts) > 0 THEN
    UPDATE accounts a SET alert_count = k.count
    FROM json_to_recordset(alert_counts) AS k(id bigint, count integer)
    WHERE a.id = k.id AND a.id = ANY(user_ids);
  END IF;

  IF json_array_length(freeze_changes) > 0 THEN
    UPDATE accounts a SET frozen_reason = k.reason
    FROM json_to_recordset(freeze_accounts) AS k(id bigint, reason text)
    WHERE a.id = k.id AND a.id = ANY(user_ids) AND a.kind = 'user_available';
    INSERT INTO account_freezes (user_id, command_id, frozen, reason, principal, created_at)
    SELECT k.*, written_at
    FROM json_to_recordset(freeze_changes) AS k(user_id bigint, command_id text, frozen boolean, reason text, principal text);
  END IF;

  -- Lock, then add: the CTE locks the shared rows one by one in id order as the join pulls them.
  shared_ids := ARRAY(SELECT (x->>'id')::bigint FROM json_array_elements(shared_deltas) AS x);
  IF cardinality(shared_ids) > 0 THEN
    WITH locked AS (SELECT id FROM accounts WHERE id = ANY(shared_ids) ORDER BY id FOR NO KEY UPDATE)
    UPDATE accounts a SET balance = a.balance + k.delta, updated_at = now()
    FROM locked l JOIN json_to_recordset(shared_deltas) AS k(id bigint, delta bigint) ON k.id = l.id
    WHERE a.id = l.id AND a.id = ANY(shared_ids);
  END IF;

  -- `json`, not jsonb, keeps each payload's text exactly.
  IF json_array_length(events) > 0 THEN
    -- A consumer from before the history chain (sql/0027) sends balance events without links:
    -- refused, so it stops instead of breaking its users' chains for good. Counted from the rows
    -- the insert read, in the same statement (a second pass over the json cost 3 µs an event);
    -- the exception rolls the insert back with everything else.
    WITH e AS (
      SELECT * FROM json_to_recordset(events)
        AS e(user_id bigint, sequence bigint, part smallint, command_id text, payload json, hash text)
    ), inserted AS (
      INSERT INTO balance_events (user_id, sequence, part, command_id, payload, hash)
      SELECT e.user_id, e.sequence, e.part, e.command_id, e.payload::text, decode(e.hash, 'hex') FROM e
    )
    SELECT count(*) INTO n FROM e WHERE e.part = 0 AND e.hash IS NULL;
    IF n > 0 THEN
      RAISE EXCEPTION 'a balance event without its history-chain link: this consumer predates sql/0027'
        USING ERRCODE = 'LC001';
    END IF;
  END IF;

  -- Deposits and withdrawals that named their service; a reference another partition wrote
  -- meanwhile fails on external_payments_ref, which the caller reads as stale state.
  IF json_array_length(external_payments) > 0 THEN
    INSERT INTO external_payments (command_id, service_id, external_ref, user_id, direction, amount, occurred_at)
    SELECT * FROM json_to_recordset(external_payments)
      AS k(command_id text, service_id bigint, external_ref text, user_id bigint, direction text, amount bigint,
           occurred_at timestamptz);
  END IF;

  -- Balances the replies report for users the chunk did not decide on (transfers' recipients),
  -- as this transaction leaves them; read, never locked.
  IF cardinality(report_user_ids) > 0 THEN
    SELECT json_agg(json_build_object('user_id', k.owner_id, 'kind', a.kind, 'balance', a.balance::text)) INTO reported
    FROM unnest(report_user_ids) AS k(owner_id)
    CROSS JOIN unnest(ARRAY['user_available', 'user_reserved', 'user_incoming']) AS kinds(kind)
    CROSS JOIN LATERAL (
      SELECT a.kind, a.balance FROM accounts a
      WHERE a.kind = kinds.kind AND a.owner_id = k.owner_id AND a.stripe = 0 LIMIT 1
    ) a;
  END IF;
END
$$;
