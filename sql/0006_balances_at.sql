-- Balances at a point in time (GET /api/balances/?user_id=N&at=...).
--
-- Each posting records, for each side that is a user's available or reserved account, that
-- account's balance right after the posting. Those accounts change only on their user's
-- partition, under a row lock (the consumer locks them before deciding), so the consumer knows
-- the balance after every posting it writes. The balance of such an account at an instant is
-- then the balance after its last posting at or before that instant: one index probe, however
-- long the account's history. An incoming account is credited by transfers on other partitions
-- without a lock, so its postings carry no balance; its balance at an instant is the sum of its
-- postings up to then (few for most users: one per transfer received and one per settle).
--
-- `created_at` of a chunk's postings and history rows is one timestamp the consumer takes after
-- it holds the user accounts' locks (before, it was the transaction's start), so later postings
-- of an account never carry an earlier time, even when two consumers briefly overlap on a
-- partition during a rebalance: the second waits for the lock before it takes its time.
ALTER TABLE postings
  ADD COLUMN debit_balance_after bigint,
  ADD COLUMN credit_balance_after bigint;

-- Existing postings get their balances from the running sum of each account, in posting order.
CREATE TEMPORARY TABLE user_account_legs ON COMMIT DROP AS
SELECT l.id, l.debit, sum(l.delta) OVER (PARTITION BY l.account_id ORDER BY l.id) AS balance_after
FROM (
  SELECT id, true AS debit, debit_account_id AS account_id, -amount AS delta FROM postings
  UNION ALL
  SELECT id, false, credit_account_id, amount FROM postings
) l
JOIN accounts a ON a.id = l.account_id
WHERE a.kind IN ('user_available', 'user_reserved');

UPDATE postings p SET debit_balance_after = l.balance_after FROM user_account_legs l WHERE l.id = p.id AND l.debit;
UPDATE postings p SET credit_balance_after = l.balance_after FROM user_account_legs l WHERE l.id = p.id AND NOT l.debit;

CREATE INDEX postings_debit_account_time ON postings (debit_account_id, created_at, id)
  INCLUDE (amount, debit_balance_after);
CREATE INDEX postings_credit_account_time ON postings (credit_account_id, created_at, id)
  INCLUDE (amount, credit_balance_after);
