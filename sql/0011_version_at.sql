-- The balance version at a point in time (GET /api/balances/?user_id=N&at=...).
--
-- Each posting records the version its command took the command's user to: the `sequence` of
-- the command's balance event. Every command that changes a user's version posts to that user's
-- available or reserved account, so the version at an instant is the larger of the versions on
-- the last posting of each of the two accounts at or before it: the same probes that give the
-- balances. Postings from before balance events existed (sql/0008) carry none.
ALTER TABLE postings ADD COLUMN version_after bigint;

UPDATE postings p SET version_after = e.sequence
FROM balance_events e
WHERE e.command_id = p.command_id AND e.part = 0;
