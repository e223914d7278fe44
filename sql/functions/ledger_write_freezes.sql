-- A chunk with freezes or unfreezes sets each account's final state (rows of the chunk's locked
-- available accounts) and appends every change, in order, to account_freezes.
CREATE OR REPLACE FUNCTION ledger_write_freezes(
  account_ids bigint[], reasons text[],
  f_user_id bigint[], f_command_id text[], f_frozen boolean[], f_reason text[], f_principal text[],
  written_at timestamptz
)
RETURNS void
LANGUAGE sql
AS $$
  UPDATE accounts a SET frozen_reason = k.reason
  FROM unnest(account_ids, reasons) AS k(id, reason)
  WHERE a.id = k.id AND a.kind = 'user_available';
  INSERT INTO account_freezes (user_id, command_id, frozen, reason, principal, created_at)
  SELECT k.*, written_at FROM unnest(f_user_id, f_command_id, f_frozen, f_reason, f_principal) AS k;
$$;
