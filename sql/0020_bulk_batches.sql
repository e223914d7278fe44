-- Bulks of commands sent over HTTP (POST /api/commands/bulk): what the batch status URL lists.
-- One row per bulk: who sent it and, per item in order, its key and command id, or the error
-- that kept it from being published. The items' outcomes are read from `commands` when asked.
-- Rows are small (at most BULK_COMMANDS_MAX items) and only read by id; an operator may delete
-- old ones (`DELETE FROM bulk_batches WHERE created_at < now() - interval '30 days'`): the
-- commands themselves stay, and each item's status stays at /api/commands/<key>.
CREATE TABLE bulk_batches (
  id uuid PRIMARY KEY,
  principal_user_id bigint NOT NULL,
  items jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
