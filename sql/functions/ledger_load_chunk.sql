-- Everything a chunk needs to decide, in one round trip: the commands of the chunk already
-- decided, its accounts (users' available and reserved rows locked, missing ones created), the
-- latest reservation of each order it names, and the threshold alerts of its users who have
-- some. It used to take four to seven statements (src/ledger/store/*.ts ran them one by one).
--
-- Lock order, as before: the users' existing rows are locked FOR NO KEY UPDATE in ascending id
-- order; then missing rows are created (in key order, ON CONFLICT DO NOTHING); then the rows
-- another transaction created meanwhile are locked, again in id order. Shared rows (incoming,
-- external and revenue stripes) are read, never locked here: the chunk changes them by a delta
-- at the end of its write (ledger_commit_chunk.sql). A shared account that other partitions
-- may create too is created before the chunk's transaction (store/accounts.ts), so creating it
-- here only happens for the chunk's own stripes.
--
-- One row per item, `what` naming its kind. Amounts, balances and versions are text in the json,
-- so no number above 2^53 is ever rounded on the way to TypeScript.
-- Every look-up below is a probe per key of the chunk's arrays, written so the planner cannot
-- turn it around: a LATERAL subquery with LIMIT 1 (or a lock) is never pulled up into a join. As
-- plain joins, the planner chose by statistics, and with autovacuum off (as on the development
-- machines) accounts keeps the statistics the migrations left it (one row per page): it then
-- scanned every account once per chunk, or once per key (8 ms a call at 2,000 accounts, with
-- auto_explain), where a probe per key costs microseconds whatever the table holds.

CREATE OR REPLACE FUNCTION ledger_load_chunk(
  command_ids text[],
  u_kind text[], u_owner_id bigint[],
  s_kind text[], s_owner_id bigint[], s_stripe integer[],
  o_user_id bigint[], o_service_id bigint[], o_order_id bigint[]
)
RETURNS TABLE (what text, item json)
LANGUAGE plpgsql
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  -- Users' accounts are stripe 0; joining on a stripe column, not a constant, lets the planner
  -- use all three columns of accounts' natural key.
  u_stripe integer[] := array_fill(0, ARRAY[cardinality(u_kind)]);
  locked_ids bigint[];
  alert_user_ids bigint[];
BEGIN
  RETURN QUERY
    SELECT 'command', json_build_object('id', c.id, 'fingerprint', c.fingerprint, 'status', c.status,
                                        'code', c.code, 'message', c.message)
    FROM commands c WHERE c.id = ANY(command_ids);

  IF cardinality(u_kind) > 0 THEN
    locked_ids := account_ids_of(u_kind, u_owner_id, u_stripe);
    PERFORM lock_accounts_in_order(locked_ids);
    IF cardinality(locked_ids) < cardinality(u_kind) THEN
      PERFORM create_missing_accounts(u_kind, u_owner_id, u_stripe);
      -- Ours now, and those another consumer created between our look-up and our insert.
      PERFORM lock_accounts_in_order(ARRAY(
        SELECT id FROM unnest(account_ids_of(u_kind, u_owner_id, u_stripe)) AS id WHERE id <> ALL(locked_ids)));
    END IF;
  END IF;

  IF cardinality(s_kind) > 0 THEN
    PERFORM create_missing_accounts(s_kind, s_owner_id, s_stripe);
  END IF;

  RETURN QUERY
    SELECT 'account', json_build_object('id', a.id, 'kind', a.kind, 'owner_id', a.owner_id, 'balance', a.balance::text,
                                        'version', a.version::text, 'alert_count', a.alert_count,
                                        'frozen_reason', a.frozen_reason, 'chain_hash', encode(a.chain_hash, 'hex'))
    FROM (SELECT * FROM unnest(u_kind, u_owner_id, u_stripe)
          UNION ALL
          SELECT * FROM unnest(s_kind, s_owner_id, s_stripe)) AS k(kind, owner_id, stripe)
    CROSS JOIN LATERAL (
      SELECT a.id, a.kind, a.owner_id, a.balance, a.version, a.alert_count, a.frozen_reason, a.chain_hash FROM accounts a
      WHERE a.kind = k.kind AND a.owner_id = k.owner_id AND a.stripe = k.stripe
      LIMIT 1
    ) a;

  -- The latest reservation of each order, one probe of reservations_by_order each. An open one is
  -- always the latest (a reserve is refused while one is open); a closed one matters if an expire
  -- closed it (a capture or release is then answered reservation_expired). Beside it, what all of
  -- the order's captured reservations captured and had refunded: refunds of an order are bounded
  -- by its captures together, whichever reservation a later reserve of the order id opened.
  IF cardinality(o_user_id) > 0 THEN
    RETURN QUERY
      SELECT 'reservation', json_build_object('id', r.id, 'user_id', k.user_id, 'service_id', k.service_id,
                                              'order_id', k.order_id, 'amount', r.amount::text, 'status', r.status,
                                              'reserve_command_id', r.reserve_command_id,
                                              'order_captured', t.captured::text,
                                              'order_refunded', t.refunded::text)
      FROM unnest(o_user_id, o_service_id, o_order_id) AS k(user_id, service_id, order_id)
      CROSS JOIN LATERAL (
        SELECT r.id, r.amount, r.status, r.reserve_command_id FROM reservations r
        WHERE r.user_id = k.user_id AND r.service_id = k.service_id AND r.order_id = k.order_id
        ORDER BY r.id DESC LIMIT 1
      ) r
      CROSS JOIN LATERAL (
        SELECT coalesce(sum(x.captured_amount), 0) AS captured, coalesce(sum(x.refunded_amount), 0) AS refunded
        FROM reservations x
        WHERE x.user_id = k.user_id AND x.service_id = k.service_id AND x.order_id = k.order_id AND x.status = 'captured'
      ) t;
  END IF;

  -- Alerts only of users whose (locked) available account counts some.
  SELECT array_agg(k.owner_id) INTO alert_user_ids
  FROM unnest(u_kind, u_owner_id) AS k(kind, owner_id)
  CROSS JOIN LATERAL (
    SELECT a.alert_count FROM accounts a
    WHERE a.kind = k.kind AND a.owner_id = k.owner_id AND a.stripe = 0
    LIMIT 1
  ) a
  WHERE k.kind = 'user_available' AND a.alert_count > 0;
  IF alert_user_ids IS NOT NULL THEN
    RETURN QUERY
      SELECT 'alert', json_build_object('id', b.id, 'user_id', b.user_id, 'direction', b.direction,
                                        'threshold', b.threshold::text, 'past', b.past)
      FROM balance_alerts b WHERE b.user_id = ANY(alert_user_ids);
  END IF;
END
$$;
