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

-- The functions created here now live in sql/functions/ (one file each, applied after the
-- numbered migrations by src/db/migrate.ts): ledger_write_refunds.sql, ledger_write_freezes.sql, ledger_load_chunk.sql.
-- Their earlier bodies are in git's history.
