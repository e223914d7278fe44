-- The external account and the services' revenue accounts are striped: one row per command
-- partition (`stripe` = the partition the command was consumed from), so a chunk of one
-- partition never waits on a row that a chunk of another partition holds locked until its
-- commit. Every deposit and withdraw of every partition used to lock the one external row.
--
-- Today's rows become stripe 0, balances and history untouched; other stripes are created by
-- their own partition's first chunk. A ledger-wide figure (the external total, a service's
-- revenue) is the sum over its stripes; `npm run verify` checks each row against its postings,
-- and reconcile compares the sums. User accounts are never striped: their balances decide.
ALTER TABLE accounts ADD COLUMN stripe integer NOT NULL DEFAULT 0
  CONSTRAINT accounts_stripe_range CHECK (stripe BETWEEN 0 AND 9999);
ALTER TABLE accounts ADD CONSTRAINT accounts_only_shared_kinds_striped
  CHECK (stripe = 0 OR kind IN ('external', 'revenue'));
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_owner_id_key;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_owner_id_stripe_key UNIQUE (kind, owner_id, stripe);
