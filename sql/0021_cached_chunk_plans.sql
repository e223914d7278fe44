-- The chunk functions plan once per connection, not once per call (issue 19).
--
-- Why: with `plan_cache_mode=force_custom_plan` on the pool (src/db/pool.ts), every statement
-- inside ledger_load_chunk and ledger_write_chunk was planned again on every call. The helpers
-- below were SQL functions, whose bodies PostgreSQL 15 plans on every call anyway. Measured with
-- pg_stat_statements (track = all, track_planning = on), 1,000 users, sync deposits of ~8 per
-- chunk: 0.64 ms of planning per chunk, beside 2.5 ms of execution.
--
-- Why the pool re-planned, and why that no longer applies here: a generic plan is made once, on
-- the statistics of that moment, and kept until the table is analyzed again; one made while a
-- table was empty scans it, and with autovacuum off nothing ever analyzes it. So inside these
-- functions:
--   * every look-up of accounts, commands, reservations and alerts is bounded by the chunk's keys
--     (a LATERAL probe, or `= ANY(array)` on an indexed column), never a join the planner could
--     turn into a scan of the table;
--   * `enable_seqscan = off`, so that even a plan made on an empty table takes the index: with
--     it on, a ten-page table is cheaper to scan than to probe, and that plan would be kept;
--   * `plan_cache_mode = force_generic_plan`, so the plans are made once per connection.
-- tests/ledger/store/cached-plans.int.test.ts makes the plans on empty tables, fills the tables without
-- analyzing them, and counts the rows each chunk then reads.

CREATE OR REPLACE FUNCTION account_ids_of(kinds text[], owner_ids bigint[], stripes integer[]) RETURNS bigint[]
LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN (
    SELECT coalesce(array_agg(p.id ORDER BY p.id), '{}')
    FROM unnest(kinds, owner_ids, stripes) AS k(kind, owner_id, stripe)
    CROSS JOIN LATERAL (
      SELECT a.id FROM accounts a WHERE a.kind = k.kind AND a.owner_id = k.owner_id AND a.stripe = k.stripe LIMIT 1
    ) p);
END
$$;

CREATE OR REPLACE FUNCTION lock_accounts_in_order(ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM count(*) FROM unnest(ids) WITH ORDINALITY AS i(id, n)
  CROSS JOIN LATERAL (SELECT a.id FROM accounts a WHERE a.id = i.id FOR NO KEY UPDATE) l;
END
$$;

CREATE OR REPLACE FUNCTION create_missing_accounts(kinds text[], owner_ids bigint[], stripes integer[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO accounts (kind, owner_id, stripe)
  SELECT k.kind, k.owner_id, k.stripe
  FROM unnest(kinds, owner_ids, stripes) AS k(kind, owner_id, stripe)
  LEFT JOIN LATERAL (
    SELECT a.id FROM accounts a WHERE a.kind = k.kind AND a.owner_id = k.owner_id AND a.stripe = k.stripe LIMIT 1
  ) p ON true
  WHERE p.id IS NULL
  ORDER BY k.kind, k.owner_id, k.stripe
  ON CONFLICT (kind, owner_id, stripe) DO NOTHING;
END
$$;

ALTER FUNCTION account_ids_of SET enable_seqscan = off;
ALTER FUNCTION account_ids_of SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION lock_accounts_in_order SET enable_seqscan = off;
ALTER FUNCTION lock_accounts_in_order SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION create_missing_accounts SET enable_seqscan = off;
ALTER FUNCTION create_missing_accounts SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION ledger_load_chunk SET enable_seqscan = off;
ALTER FUNCTION ledger_load_chunk SET plan_cache_mode = force_generic_plan;

-- The write, as in sql/0016_write_chunk.sql, with each update of an existing table bounded by the
-- chunk's keys (`= ANY(...)` beside the join): a join to unnest() alone may be planned as a scan
-- of the whole table, and a generic plan keeps that shape as the table grows.
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
  OUT written_at timestamptz,
  OUT transaction_ids bigint[]
)
LANGUAGE plpgsql AS $$
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
                              close_command_id, closed_at, expires_at)
    SELECT k.user_id, k.service_id, k.order_id, k.amount, k.status, k.captured_amount, k.reserve_command_id,
           k.close_command_id, CASE WHEN k.status = 'open' THEN NULL ELSE now() END,
           now() + make_interval(secs => k.expires_in_s)
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
      RAISE EXCEPTION 'closed % of % reservations', closed_count, cardinality(rc_id);
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

ALTER FUNCTION ledger_write_chunk SET enable_seqscan = off;
ALTER FUNCTION ledger_write_chunk SET plan_cache_mode = force_generic_plan;
