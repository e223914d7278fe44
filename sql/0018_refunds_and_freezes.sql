-- Refunds and frozen accounts (issue 20).
--
-- A refund gives back money of a captured order: from the service's revenue to the user's
-- available balance. Refunds of an order add up to at most what its capture recognised, so the
-- order's latest reservation keeps what was refunded of it so far. A capture's reservation is
-- the one a refund names: the latest of its order (a new reserve of the same order id after the
-- capture makes the order not captured until that one is captured too).
--
-- A frozen account: an admin's freeze stops money leaving a user's available balance (withdraw,
-- transfer out, reserve) while money still arrives. The state is on the user's available row,
-- which every chunk of that user locks anyway, so deciding on it costs no extra look-up; every
-- freeze and unfreeze is also kept, with who did it and why, in account_freezes.
ALTER TABLE reservations ADD COLUMN refunded_amount bigint NOT NULL DEFAULT 0;
-- The rule the decision enforces, kept by the table too: no order is refunded beyond its capture.
ALTER TABLE reservations ADD CONSTRAINT reservations_refund_within_capture
  CHECK (refunded_amount >= 0 AND refunded_amount <= captured_amount);

-- A refund debits the revenue stripe of the partition that decides it: the user's, which is the
-- stripe its capture credited, unless partitions were added in between and the user's key now
-- maps elsewhere. So one stripe may go below zero while the service's revenue, the sum of its
-- stripes, never does (refunds of an order are bounded by its capture); `npm run verify` checks
-- that sum instead (revenue_not_negative).
ALTER TABLE accounts DROP CONSTRAINT revenue_not_negative;

ALTER TABLE accounts ADD COLUMN frozen_reason text;
ALTER TABLE accounts ADD CONSTRAINT accounts_only_available_frozen
  CHECK (frozen_reason IS NULL OR kind = 'user_available');

CREATE TABLE account_freezes (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id bigint NOT NULL,
  command_id text NOT NULL REFERENCES commands (id),
  frozen boolean NOT NULL,
  -- The admin's reason for a freeze; an unfreeze may give one too.
  reason text CHECK (char_length(reason) <= 500),
  principal text NOT NULL,
  created_at timestamptz NOT NULL
);
CREATE INDEX account_freezes_by_user ON account_freezes (user_id, id);

ALTER TABLE commands DROP CONSTRAINT commands_type_check;
ALTER TABLE commands ADD CONSTRAINT commands_type_check
  CHECK (type IN ('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer', 'settle', 'expire',
                  'set_alert', 'remove_alert', 'refund', 'freeze', 'unfreeze'));
ALTER TABLE transactions DROP CONSTRAINT transactions_transaction_type_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_transaction_type_check
  CHECK (transaction_type IN ('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer_out', 'transfer_in',
                              'expire', 'refund'));

-- The monthly report nets refunds against captures: one row per capture (positive) and per
-- refund (negative), in the month each happened.
CREATE OR REPLACE VIEW revenue_entries AS
  SELECT t.service_id, t.order_id, t.user_id, -t.amount AS amount, t.created_at, t.command_id
  FROM transactions t
  WHERE t.transaction_type IN ('capture', 'refund');

-- A chunk with refunds records them after ledger_write_chunk (which may have just inserted the
-- captured reservation): each refunded reservation, named by its order and the reserve command
-- that opened it (one probe of reservations_by_order), takes its new refunded total and must be
-- captured. Chunks without refunds never call it, so the hot path keeps its round trips.
CREATE FUNCTION ledger_write_refunds(
  user_ids bigint[], service_ids bigint[], order_ids bigint[], reserve_command_ids text[], refunded bigint[]
)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
  updated integer;
BEGIN
  UPDATE reservations r SET refunded_amount = k.refunded
  FROM unnest(user_ids, service_ids, order_ids, reserve_command_ids, refunded)
    AS k(user_id, service_id, order_id, reserve_command_id, refunded)
  WHERE r.user_id = k.user_id AND r.service_id = k.service_id AND r.order_id = k.order_id
    AND r.reserve_command_id = k.reserve_command_id AND r.status = 'captured';
  GET DIAGNOSTICS updated = ROW_COUNT;
  IF updated <> cardinality(user_ids) THEN
    RAISE EXCEPTION 'recorded refunds of % of % orders', updated, cardinality(user_ids);
  END IF;
END
$$;

-- A chunk with freezes or unfreezes sets each account's final state (rows of the chunk's locked
-- available accounts) and appends every change, in order, to account_freezes.
CREATE FUNCTION ledger_write_freezes(
  account_ids bigint[], reasons text[],
  f_user_id bigint[], f_command_id text[], f_frozen boolean[], f_reason text[], f_principal text[],
  written_at timestamptz
)
RETURNS void
LANGUAGE sql AS $$
  UPDATE accounts a SET frozen_reason = k.reason
  FROM unnest(account_ids, reasons) AS k(id, reason)
  WHERE a.id = k.id AND a.kind = 'user_available';
  INSERT INTO account_freezes (user_id, command_id, frozen, reason, principal, created_at)
  SELECT k.*, written_at FROM unnest(f_user_id, f_command_id, f_frozen, f_reason, f_principal) AS k;
$$;

-- As in sql/0017_load_chunk.sql, and each account says whether it is frozen (its reason, or
-- null), each order's latest reservation what it captured and what was refunded of it.
CREATE OR REPLACE FUNCTION ledger_load_chunk(
  command_ids text[],
  u_kind text[], u_owner_id bigint[],
  s_kind text[], s_owner_id bigint[], s_stripe integer[],
  o_user_id bigint[], o_service_id bigint[], o_order_id bigint[]
)
RETURNS TABLE (what text, item json)
LANGUAGE plpgsql AS $$
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
                                        'frozen_reason', a.frozen_reason)
    FROM (SELECT * FROM unnest(u_kind, u_owner_id, u_stripe)
          UNION ALL
          SELECT * FROM unnest(s_kind, s_owner_id, s_stripe)) AS k(kind, owner_id, stripe)
    CROSS JOIN LATERAL (
      SELECT a.id, a.kind, a.owner_id, a.balance, a.version, a.alert_count, a.frozen_reason FROM accounts a
      WHERE a.kind = k.kind AND a.owner_id = k.owner_id AND a.stripe = k.stripe
      LIMIT 1
    ) a;

  -- The latest reservation of each order, one probe of reservations_by_order each. An open one is
  -- always the latest (a reserve is refused while one is open); a closed one matters if an expire
  -- closed it (a capture or release is then answered reservation_expired) or a capture did (a
  -- refund is bounded by what was captured less what was refunded).
  IF cardinality(o_user_id) > 0 THEN
    RETURN QUERY
      SELECT 'reservation', json_build_object('id', r.id, 'user_id', k.user_id, 'service_id', k.service_id,
                                              'order_id', k.order_id, 'amount', r.amount::text, 'status', r.status,
                                              'reserve_command_id', r.reserve_command_id,
                                              'captured_amount', r.captured_amount::text,
                                              'refunded_amount', r.refunded_amount::text)
      FROM unnest(o_user_id, o_service_id, o_order_id) AS k(user_id, service_id, order_id)
      CROSS JOIN LATERAL (
        SELECT r.id, r.amount, r.status, r.reserve_command_id, r.captured_amount, r.refunded_amount FROM reservations r
        WHERE r.user_id = k.user_id AND r.service_id = k.service_id AND r.order_id = k.order_id
        ORDER BY r.id DESC LIMIT 1
      ) r;
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
