-- Balance events (docs/events.md).
--
-- `accounts.version`, on a user's available account, is the user's balance version: the number
-- of commands applied on the user's own partition (everything but a transfer's credit to their
-- incoming, which arrives with its settle). Each applied command makes one event with the
-- next version as its `sequence`; the event is stored with the command, in the same
-- transaction, and sent again unchanged whenever the command is delivered again.
ALTER TABLE accounts ADD COLUMN version bigint NOT NULL DEFAULT 0 CHECK (version >= 0);

CREATE TABLE balance_events (
  user_id bigint NOT NULL,
  sequence bigint NOT NULL CHECK (sequence >= 1),
  command_id text NOT NULL,
  payload text NOT NULL,
  PRIMARY KEY (user_id, sequence)
);
CREATE INDEX balance_events_command ON balance_events (command_id);

-- An existing ledger had no events: its users' versions start from the commands already applied
-- for them, so the first new event continues the count instead of repeating it.
UPDATE accounts a SET version = c.applied
FROM (SELECT user_id, count(*) AS applied FROM commands WHERE status = 'applied' GROUP BY user_id) c
WHERE a.kind = 'user_available' AND a.owner_id = c.user_id;
