-- The double-entry ledger.
--
-- Money is BIGINT minor units (kopecks). Every applied command writes postings; a posting moves
-- an amount from one account (debit) to another (credit), TigerBeetle style, so each posting is
-- balanced by construction. An account's balance is the sum of its credits minus its debits.
-- Balances are stored on the account row as well, for O(1) reads and row locks; `npm run verify`
-- checks that they equal the postings.

-- Kinds of account:
--   user_available  money a user can spend           (owner = user id)
--   user_reserved   money held for open reservations (owner = user id)
--   revenue         a service's recognized revenue   (owner = service id)
--   external        the world outside the ledger     (owner = 0); its balance is the negative of
--                   all money deposited and not withdrawn, so all balances sum to zero.
CREATE TABLE accounts (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('user_available', 'user_reserved', 'revenue', 'external')),
  owner_id bigint NOT NULL CHECK (owner_id >= 0),
  balance bigint NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (kind, owner_id),
  -- Users never go negative; the code checks this too, this is the second, independent guard.
  CONSTRAINT user_balance_not_negative CHECK (kind NOT IN ('user_available', 'user_reserved') OR balance >= 0),
  CONSTRAINT revenue_not_negative CHECK (kind <> 'revenue' OR balance >= 0)
);

INSERT INTO accounts (kind, owner_id) VALUES ('external', 0);

-- One row per command ever decided, applied or rejected. The primary key is the client's
-- idempotency key: a redelivered command finds its row and is answered from it instead of being
-- applied again. The fingerprint (a hash of the command's meaningful fields) tells a true
-- repeat from a reuse of the key for different content.
CREATE TABLE commands (
  -- The id's character set is validated by the command schema; a regex CHECK here cost more
  -- than the rest of the row together, so the database keeps only the length bound.
  id text PRIMARY KEY CHECK (char_length(id) BETWEEN 1 AND 128),
  fingerprint text NOT NULL,
  type text NOT NULL CHECK (type IN ('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer')),
  user_id bigint NOT NULL,
  status text NOT NULL CHECK (status IN ('applied', 'rejected')),
  code text NOT NULL,
  message text NOT NULL DEFAULT '',
  -- Where the command came from in Kafka, for operators tracing a replay.
  source_partition integer,
  source_offset bigint,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Immutable postings: the double-entry record.
--
-- No FOREIGN KEYs on postings and transactions: they are written only by the consumer, in the
-- same transaction as the rows they point at, and a per-row FK trigger was half the cost of a
-- batch. `npm run verify` checks the references instead (postings_reference_existing_rows).
CREATE TABLE postings (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  command_id text NOT NULL,
  debit_account_id bigint NOT NULL,
  credit_account_id bigint NOT NULL,
  amount bigint NOT NULL CHECK (amount > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  CHECK (debit_account_id <> credit_account_id)
);

-- The user-facing history: what a user sees as "my transactions". Each row links to its command.
-- `amount` is signed from the user's point of view: negative when money leaves their available
-- balance (withdraw, reserve, transfer out, and the recognized part of a capture).
CREATE TABLE transactions (
  id bigint PRIMARY KEY,
  command_id text NOT NULL,
  user_id bigint NOT NULL,
  amount bigint NOT NULL CHECK (amount <> 0),
  transaction_type text NOT NULL
    CHECK (transaction_type IN ('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer_out', 'transfer_in')),
  service_id bigint,
  order_id bigint,
  counterparty_id bigint,
  comment text CHECK (char_length(comment) <= 500),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE transactions_id_seq OWNED BY transactions.id;
ALTER TABLE transactions ALTER COLUMN id SET DEFAULT nextval('transactions_id_seq');

-- Keyset pagination of a user's history, by date or by amount, with the id as tie-breaker.
CREATE INDEX transactions_user_date ON transactions (user_id, created_at, id);
CREATE INDEX transactions_user_amount ON transactions (user_id, amount, id);
CREATE INDEX transactions_command ON transactions (command_id);

-- Reservations of money for an order. At most one open reservation per (user, service, order);
-- once captured or released it is closed and the same order may be reserved again.
CREATE TABLE reservations (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id bigint NOT NULL,
  service_id bigint NOT NULL,
  order_id bigint NOT NULL,
  amount bigint NOT NULL CHECK (amount > 0),
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'captured', 'released')),
  captured_amount bigint NOT NULL DEFAULT 0 CHECK (captured_amount >= 0 AND captured_amount <= amount),
  reserve_command_id text NOT NULL REFERENCES commands (id),
  close_command_id text REFERENCES commands (id),
  created_at timestamptz NOT NULL DEFAULT now(),
  closed_at timestamptz,
  CHECK ((status = 'open') = (close_command_id IS NULL)),
  CHECK (status = 'captured' OR captured_amount = 0)
);
CREATE UNIQUE INDEX reservations_one_open ON reservations (user_id, service_id, order_id) WHERE status = 'open';

-- Names for the accounting report; a service without a row is reported as "service <id>".
CREATE TABLE services (
  id bigint PRIMARY KEY CHECK (id > 0),
  name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200)
);

-- What the monthly revenue report reads: one row per recognized capture.
CREATE VIEW revenue_entries AS
  SELECT t.service_id, t.order_id, t.user_id, -t.amount AS amount, t.created_at, t.command_id
  FROM transactions t
  WHERE t.transaction_type = 'capture';
