-- The ids of the accounts of these natural keys that exist, in ascending order: the order every
-- chunk locks in (lock_accounts_in_order), so chunks that meet on accounts never deadlock.
--
-- A probe per key (a LATERAL subquery with LIMIT 1), never a join the planner could turn into a
-- scan of accounts; plpgsql, not sql, so its plan is made once per connection, and on an index
-- even while the table is empty (see sql/0021_cached_chunk_plans.sql for the measurements).
CREATE OR REPLACE FUNCTION account_ids_of(kinds text[], owner_ids bigint[], stripes integer[]) RETURNS bigint[]
LANGUAGE plpgsql STABLE
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  RETURN (
    SELECT coalesce(array_agg(p.id ORDER BY p.id), '{}')
    FROM unnest(kinds, owner_ids, stripes) AS k(kind, owner_id, stripe)
    CROSS JOIN LATERAL (
      SELECT a.id FROM accounts a WHERE a.kind = k.kind AND a.owner_id = k.owner_id AND a.stripe = k.stripe LIMIT 1
    ) p);
END
$$;
