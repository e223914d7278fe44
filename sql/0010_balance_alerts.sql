-- Threshold alerts (docs/events.md, "Threshold alerts").
--
-- An alert is registered and removed by commands on the user's own partition (`set_alert`,
-- `remove_alert`), so the log decides when it exists, exactly like a balance change: a replay
-- into an empty database registers it at the same point and fires it at the same commands.
-- Its id is the id of the command that registered it.
--
-- `past` is whether the user's available balance is past the threshold (below it for `below`,
-- above it for `above`) after the latest command: an alert fires when a command takes it from
-- false to true, so it fires once per crossing, not on every change while the balance stays past.
CREATE TABLE balance_alerts (
  id text PRIMARY KEY,
  user_id bigint NOT NULL,
  direction text NOT NULL CHECK (direction IN ('below', 'above')),
  threshold bigint NOT NULL CHECK (threshold > 0),
  past boolean NOT NULL
);
CREATE INDEX balance_alerts_user ON balance_alerts (user_id);

-- How many alerts the user has, on their available account: the consumer reads it with the
-- balance it locks anyway, so a chunk of users without alerts never queries balance_alerts.
ALTER TABLE accounts ADD COLUMN alert_count integer NOT NULL DEFAULT 0 CHECK (alert_count >= 0);

ALTER TABLE commands DROP CONSTRAINT commands_type_check;
ALTER TABLE commands ADD CONSTRAINT commands_type_check
  CHECK (type IN ('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer', 'settle', 'expire',
                  'set_alert', 'remove_alert'));

-- A command's events: its balance event (part 0) and the threshold_crossed events it fired
-- (parts 1, 2, ...), which carry the same sequence as the balance change that crossed them.
ALTER TABLE balance_events ADD COLUMN part smallint NOT NULL DEFAULT 0 CHECK (part >= 0);
ALTER TABLE balance_events DROP CONSTRAINT balance_events_pkey;
ALTER TABLE balance_events ADD PRIMARY KEY (user_id, sequence, part);
