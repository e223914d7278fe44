-- Everything a chunk writes, in one round trip: the chunk's time and transaction ids, its
-- command, posting and transaction rows, the reservations it opened and closed, its alerts, the
-- balances and versions of its locked user accounts, the deltas of the shared accounts (locked
-- here, last, in id order), and its balance events. It used to take up to eleven statements,
-- each a round trip and a plan; the consumer's CPU and PostgreSQL's went mostly to that per-chunk
-- overhead whenever chunks were small (issue 19).
--
-- The statements are the ones the ledger's store ran one by one before, in the same order, with
-- the same lock order: user accounts were locked in id order when the chunk loaded them, and the
-- shared accounts are locked here in id order by the CTE (tests/ledger/store/write-chunk.int.test.ts
-- checks that order). Arrays of one table's columns have equal lengths; an empty array writes
-- nothing.
--
-- The chunk's time is clock_timestamp() taken on entry, after the chunk already holds its user
-- accounts' locks: a later chunk of the same account never gets an earlier time
-- (sql/0006_balances_at.sql). Transaction ids are allocated in the order of the given rows and
-- returned in that order.
-- Each update of an existing table is bounded by the chunk's keys (`= ANY(...)` beside the join):
-- a join to unnest() alone may be planned as a scan of the whole table, and a generic plan keeps
-- that shape as the table grows (sql/0021_cached_chunk_plans.sql).
-- Issue 33 added `source_partition` (the chunk's partition, kept on the holds it opens, so the
-- hold-expiry sweeper finds the due holds of its own partitions by index): the old signature goes.
DROP FUNCTION IF EXISTS ledger_write_chunk(text[], text[], text[], bigint[], text[], text[], text[], integer[], bigint[], text[], text[], bigint[], bigint[], bigint[], bigint[], bigint[], bigint[], text[], bigint[], bigint[], text[], bigint[], bigint[], bigint[], text[], bigint[], bigint[], bigint[], bigint[], text[], bigint[], text[], text[], integer[], bigint[], text[], bigint[], text[], text[], bigint[], text[], bigint[], boolean[], text[], bigint[], integer[], bigint[], bigint[], bigint[], bigint[], bigint[], json);
CREATE OR REPLACE FUNCTION ledger_write_chunk(
  c_id text[], c_fingerprint text[], c_type text[], c_user_id bigint[], c_status text[], c_code text[],
  c_message text[], c_partition integer[], c_offset bigint[], c_principal text[],
  p_command_id text[], p_debit_account_id bigint[], p_credit_account_id bigint[], p_amount bigint[],
  p_debit_balance_after bigint[], p_credit_balance_after bigint[], p_version_after bigint[],
  t_command_id text[], t_user_id bigint[], t_amount bigint[], t_type text[], t_service_id bigint[],
  t_order_id bigint[], t_counterparty_id bigint[], t_comment text[],
  ro_user_id bigint[], ro_service_id bigint[], ro_order_id bigint[], ro_amount bigint[], ro_status text[],
  ro_captured_amount bigint[], ro_reserve_command_id text[], ro_close_command_id text[], ro_expires_in_s integer[],
  rc_id bigint[], rc_status text[], rc_captured_amount bigint[], rc_close_command_id text[],
  au_id text[], au_user_id bigint[], au_direction text[], au_threshold bigint[], au_past boolean[],
  ad_id text[],
  ac_owner_id bigint[], ac_count integer[],
  bs_id bigint[], bs_balance bigint[], bs_version bigint[],
  bd_id bigint[], bd_delta bigint[],
  events json,
  source_partition integer,
  OUT written_at timestamptz,
  OUT transaction_ids bigint[]
)
LANGUAGE plpgsql
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  closed_count integer;
  alert_account_ids bigint[];
  -- A variable, not a literal: a generic plan sees a parameter, so the partial indexes on open
  -- reservations (whose predicate a literal 'open' would match) are not candidates for the scan
  -- by id, and the planner cannot pick one with no condition that reads every open reservation.
  open_status CONSTANT text := 'open';
BEGIN
  written_at := clock_timestamp();
  transaction_ids := ARRAY(SELECT nextval('transactions_id_seq') FROM generate_series(1, cardinality(t_command_id)));

  INSERT INTO commands (id, fingerprint, type, user_id, status, code, message, source_partition, source_offset, principal)
  SELECT * FROM unnest(c_id, c_fingerprint, c_type, c_user_id, c_status, c_code, c_message, c_partition, c_offset, c_principal);

  INSERT INTO postings
    (command_id, debit_account_id, credit_account_id, amount, debit_balance_after, credit_balance_after, version_after, created_at)
  SELECT k.*, written_at
  FROM unnest(p_command_id, p_debit_account_id, p_credit_account_id, p_amount, p_debit_balance_after,
              p_credit_balance_after, p_version_after) AS k;

  INSERT INTO transactions (id, command_id, user_id, amount, transaction_type, service_id, order_id, counterparty_id, comment, created_at)
  SELECT k.*, written_at
  FROM unnest(transaction_ids, t_command_id, t_user_id, t_amount, t_type, t_service_id, t_order_id,
              t_counterparty_id, t_comment) AS k;

  IF cardinality(ro_user_id) > 0 THEN
    INSERT INTO reservations (user_id, service_id, order_id, amount, status, captured_amount, reserve_command_id,
                              close_command_id, closed_at, expires_at, source_partition, expire_next_at)
    SELECT k.user_id, k.service_id, k.order_id, k.amount, k.status, k.captured_amount, k.reserve_command_id,
           k.close_command_id, CASE WHEN k.status = 'open' THEN NULL ELSE now() END,
           now() + make_interval(secs => k.expires_in_s), source_partition, now() + make_interval(secs => k.expires_in_s)
    FROM unnest(ro_user_id, ro_service_id, ro_order_id, ro_amount, ro_status, ro_captured_amount,
                ro_reserve_command_id, ro_close_command_id, ro_expires_in_s)
      AS k(user_id, service_id, order_id, amount, status, captured_amount, reserve_command_id, close_command_id, expires_in_s);
  END IF;

  IF cardinality(rc_id) > 0 THEN
    UPDATE reservations r
    SET status = k.status, captured_amount = k.captured_amount, close_command_id = k.close_command_id, closed_at = now()
    FROM unnest(rc_id, rc_status, rc_captured_amount, rc_close_command_id) AS k(id, status, captured_amount, close_command_id)
    WHERE r.id = k.id AND r.id = ANY(rc_id) AND r.status = open_status;
    GET DIAGNOSTICS closed_count = ROW_COUNT;
    IF closed_count <> cardinality(rc_id) THEN
      RAISE EXCEPTION 'closed % of % reservations', closed_count, cardinality(rc_id)
        USING ERRCODE = 'LI001';
    END IF;
  END IF;

  IF cardinality(au_id) > 0 THEN
    INSERT INTO balance_alerts (id, user_id, direction, threshold, past)
    SELECT * FROM unnest(au_id, au_user_id, au_direction, au_threshold, au_past)
    ON CONFLICT (id) DO UPDATE SET past = excluded.past;
  END IF;
  IF cardinality(ad_id) > 0 THEN
    DELETE FROM balance_alerts WHERE id = ANY(ad_id);
  END IF;
  IF cardinality(ac_owner_id) > 0 THEN
    -- By id, found by a probe per owner: on the natural key, the planner may prefer (kind, stripe)
    -- alone, which scans every user's account.
    alert_account_ids := ARRAY(
      SELECT p.id FROM unnest(ac_owner_id) WITH ORDINALITY AS k(owner_id, n)
      CROSS JOIN LATERAL (
        SELECT a.id FROM accounts a WHERE a.kind = 'user_available' AND a.owner_id = k.owner_id AND a.stripe = 0 LIMIT 1
      ) p
      ORDER BY k.n);
    UPDATE accounts a SET alert_count = k.count
    FROM unnest(alert_account_ids, ac_count) AS k(id, count)
    WHERE a.id = k.id AND a.id = ANY(alert_account_ids);
  END IF;

  -- Balance and version in one update (a second update of the same rows cost 12% of the mixed pass).
  IF cardinality(bs_id) > 0 THEN
    UPDATE accounts a SET balance = k.balance, version = coalesce(k.version, a.version), updated_at = now()
    FROM unnest(bs_id, bs_balance, bs_version) AS k(id, balance, version)
    WHERE a.id = k.id AND a.id = ANY(bs_id);
  END IF;
  -- Lock, then add: the CTE locks the shared rows one by one in id order as the join pulls them.
  IF cardinality(bd_id) > 0 THEN
    WITH locked AS (SELECT id FROM accounts WHERE id = ANY(bd_id) ORDER BY id FOR NO KEY UPDATE)
    UPDATE accounts a SET balance = a.balance + k.delta, updated_at = now()
    FROM locked l JOIN unnest(bd_id, bd_delta) AS k(id, delta) ON k.id = l.id
    WHERE a.id = l.id AND a.id = ANY(bd_id);
  END IF;

  -- One json value for the chunk's events; `json`, not jsonb, keeps each payload's text exactly.
  IF events IS NOT NULL THEN
    INSERT INTO balance_events (user_id, sequence, part, command_id, payload)
    SELECT e.user_id, e.sequence, e.part, e.command_id, e.payload::text
    FROM json_to_recordset(events) AS e(user_id bigint, sequence bigint, part smallint, command_id text, payload json);
  END IF;
END
$$;
