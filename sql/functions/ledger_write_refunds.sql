-- A chunk with refunds records them after ledger_write_chunk (which may have just inserted the
-- captured reservation): each refunded reservation, named by its order and the reserve command
-- that opened it (one probe of reservations_by_order), takes its new refunded total and must be
-- captured. Chunks without refunds never call it, so the hot path keeps its round trips.
CREATE OR REPLACE FUNCTION ledger_write_refunds(
  user_ids bigint[], service_ids bigint[], order_ids bigint[], reserve_command_ids text[], refunded bigint[]
)
RETURNS void
LANGUAGE plpgsql
AS $$
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
    RAISE EXCEPTION 'recorded refunds of % of % orders', updated, cardinality(user_ids)
      USING ERRCODE = 'LI001';
  END IF;
END
$$;
