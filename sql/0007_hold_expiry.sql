-- Holds that expire (reserve with expires_in_s).
--
-- A reservation may carry the instant it expires. The consumer's sweeper finds open holds past
-- it (the partial index keeps that one probe, and empty when none are due) and publishes an
-- internal `expire` command, signed like a settle, to the user's partition. Applying it returns
-- the hold to available, writes an `expire` history row and closes the reservation as
-- `expired`. Whether a hold expired is decided by where the expire lands in the log, never by
-- the clock, so a replay decides the same; `expires_at` only says when to send it.
ALTER TABLE reservations ADD COLUMN expires_at timestamptz;

ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
  CHECK (status IN ('open', 'captured', 'released', 'expired'));

ALTER TABLE commands DROP CONSTRAINT commands_type_check;
ALTER TABLE commands ADD CONSTRAINT commands_type_check
  CHECK (type IN ('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer', 'settle', 'expire'));

ALTER TABLE transactions DROP CONSTRAINT transactions_transaction_type_check;
ALTER TABLE transactions ADD CONSTRAINT transactions_transaction_type_check
  CHECK (transaction_type IN ('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer_out', 'transfer_in', 'expire'));

CREATE INDEX reservations_expiring ON reservations (expires_at) WHERE status = 'open' AND expires_at IS NOT NULL;
