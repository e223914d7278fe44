-- Least privilege for service accounts: `actions` lists what a principal may do (deposit,
-- withdraw, reserve, capture, release, transfer, set_alert, remove_alert, read_account,
-- read_revenue), within what its role allows. NULL means everything its role allows, which is
-- what every account created before this migration keeps: nobody loses a right by upgrading.
-- `npm run users -- add billing --role service --actions deposit` grants less.
ALTER TABLE users
  ADD COLUMN actions text[] CHECK (actions IS NULL OR cardinality(actions) BETWEEN 1 AND 20);
