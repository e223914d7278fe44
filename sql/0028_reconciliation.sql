-- Reconciliation against a service's outside statement (docs/reconciliation.md).
--
-- Every deposit and withdrawal that names its service (`service_id`), with the payment
-- provider's reference when it has one: unique per service and user, so a webhook delivered
-- twice under two idempotency keys is refused the second time (external_ref_reused). Per user,
-- because a user's commands are decided on their partition alone: a uniqueness across users
-- would depend on the order partitions are read in, and a replay could decide it otherwise.
-- Written with its command by ledger_commit_chunk; `occurred_at` is the command message's time.
CREATE TABLE external_payments (
  command_id text PRIMARY KEY,
  service_id bigint NOT NULL CHECK (service_id > 0),
  external_ref text CHECK (char_length(external_ref) BETWEEN 1 AND 100),
  user_id bigint NOT NULL,
  direction text NOT NULL CHECK (direction IN ('deposit', 'withdraw')),
  amount bigint NOT NULL CHECK (amount > 0),
  occurred_at timestamptz NOT NULL
);
-- Its name is how the write recognises a reference another partition took (store/commit-chunk.ts).
CREATE UNIQUE INDEX external_payments_ref ON external_payments (service_id, user_id, external_ref)
  WHERE external_ref IS NOT NULL;
CREATE INDEX external_payments_by_time ON external_payments (service_id, occurred_at);

-- A reconciliation run: one statement file of one service, matched against the ledger. Running
-- the same file with the same options again answers the stored run (`request_sha256`).
CREATE TABLE reconciliations (
  id uuid PRIMARY KEY,
  service_id bigint NOT NULL,
  request_sha256 text NOT NULL,
  principal text NOT NULL,
  options json NOT NULL,
  statement_lines integer NOT NULL CHECK (statement_lines >= 0),
  summary json NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (service_id, request_sha256)
);

-- Its results, one row per statement line or ledger entry, in the order the matcher gave them.
CREATE TABLE reconciliation_results (
  reconciliation_id uuid NOT NULL REFERENCES reconciliations (id) ON DELETE CASCADE,
  position integer NOT NULL CHECK (position >= 0),
  category text NOT NULL,
  rule text,
  statement_line integer,
  reference text,
  direction text,
  statement_amount bigint,
  statement_time timestamptz,
  ledger_command_ids text[] NOT NULL DEFAULT '{}',
  ledger_amount bigint,
  ledger_time timestamptz,
  difference bigint,
  PRIMARY KEY (reconciliation_id, position)
);
