-- A chunk with refunds records them inside ledger_commit_chunk, after its reservations (which
-- may have just inserted a captured one). A refund belongs to its order, not to one of its reservations: an
-- order may be reserved and captured more than once (a new reserve of the same order id after a
-- capture), and its refunds add up to at most all of its captures. Each order's refunded amount
-- of the chunk is taken from its captured reservations oldest first, each up to what is left of
-- its capture (the CHECK reservations_refund_within_capture), so the per-reservation totals
-- always add up to the order's refund rows (`npm run verify`: refunds_match_orders). Amounts
-- the order's captures cannot hold would break the decision's own rule: SQLSTATE LI001.
-- Input: one json array of {user_id, service_id, order_id, amount}.
CREATE OR REPLACE FUNCTION ledger_write_refunds(refunds json)
RETURNS void
LANGUAGE plpgsql
SET enable_seqscan = off
AS $$
DECLARE
  placed bigint;
  wanted bigint := (SELECT coalesce(sum(k.amount), 0) FROM json_to_recordset(refunds) AS k(amount bigint));
BEGIN
  WITH wanted_refunds AS (
    SELECT * FROM json_to_recordset(refunds) AS k(user_id bigint, service_id bigint, order_id bigint, amount bigint)
  ), room AS (
    SELECT r.id, k.amount, r.captured_amount - r.refunded_amount AS room,
           sum(r.captured_amount - r.refunded_amount)
             OVER (PARTITION BY k.user_id, k.service_id, k.order_id ORDER BY r.id) AS room_through
    FROM wanted_refunds k
    CROSS JOIN LATERAL (
      SELECT r.id, r.captured_amount, r.refunded_amount FROM reservations r
      WHERE r.user_id = k.user_id AND r.service_id = k.service_id AND r.order_id = k.order_id
        AND r.status = 'captured' AND r.refunded_amount < r.captured_amount
      ORDER BY r.id
    ) r
  ), taken AS (
    UPDATE reservations r
    SET refunded_amount = r.refunded_amount + least(m.room, greatest(0, m.amount - (m.room_through - m.room)))
    FROM room m
    WHERE r.id = m.id AND m.amount > m.room_through - m.room
    RETURNING least(m.room, greatest(0, m.amount - (m.room_through - m.room))) AS amount
  )
  SELECT coalesce(sum(amount), 0) INTO placed FROM taken;
  IF placed <> wanted THEN
    RAISE EXCEPTION 'recorded % of % refunded minor units on their orders'' captures', placed, wanted
      USING ERRCODE = 'LI001';
  END IF;
END
$$;
