-- Transfers settle on the recipient's own partition.
--
-- A transfer is decided on the sender's partition. If it credited the recipient's spendable
-- balance directly, the recipient's next decisions (a withdrawal on their own partition) would
-- depend on how the two partitions happened to interleave, and a replay of the command log
-- could decide them differently. So a transfer credits the recipient's `user_incoming` account
-- (in the same transaction as the debit), and the consumer then publishes a `settle` command,
-- keyed by the recipient, that moves the amount from incoming to available. Every decision
-- about a user's spendable money then depends only on the commands of that user's partition,
-- in offset order: the same live and in a replay.
--
-- Incoming has no lower bound in the database: while a replay is catching up, a settle may be
-- applied before its transfer (the partitions run at different speeds), and the account is
-- briefly negative. Live it never is; `npm run verify` checks that.
ALTER TABLE accounts DROP CONSTRAINT accounts_kind_check;
ALTER TABLE accounts ADD CONSTRAINT accounts_kind_check
  CHECK (kind IN ('user_available', 'user_reserved', 'user_incoming', 'revenue', 'external'));

-- A settle's id is '~settle:' followed by its transfer's id; '~' is outside the character set of
-- client ids, so a client can never take it, and the id can be up to 8 characters longer.
ALTER TABLE commands DROP CONSTRAINT commands_id_check;
ALTER TABLE commands ADD CONSTRAINT commands_id_check CHECK (char_length(id) BETWEEN 1 AND 136);
ALTER TABLE commands DROP CONSTRAINT commands_type_check;
ALTER TABLE commands ADD CONSTRAINT commands_type_check
  CHECK (type IN ('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer', 'settle'));
