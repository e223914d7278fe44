-- Creates the accounts of these natural keys that do not exist yet, in key order; one another
-- transaction creates at the same time is left to it (ON CONFLICT DO NOTHING).
CREATE OR REPLACE FUNCTION create_missing_accounts(kinds text[], owner_ids bigint[], stripes integer[]) RETURNS void
LANGUAGE plpgsql
SET enable_seqscan = off
SET plan_cache_mode = force_generic_plan
AS $$
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
