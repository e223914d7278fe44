-- Locks these accounts FOR NO KEY UPDATE one by one in the order given (ascending ids: the order
-- every chunk locks in, so chunks that meet on accounts never deadlock).
CREATE OR REPLACE FUNCTION lock_accounts_in_order(ids bigint[]) RETURNS void
LANGUAGE plpgsql
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  PERFORM count(*) FROM unnest(ids) WITH ORDINALITY AS i(id, n)
  CROSS JOIN LATERAL (SELECT a.id FROM accounts a WHERE a.id = i.id FOR NO KEY UPDATE) l;
END
$$;
