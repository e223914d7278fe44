-- Who may move money, and who did.
--
-- Every command records the principal that sent it: `user:<id>`, `service:<id>` or
-- `admin:<id>` as the gateway attested it, `producer:<name>` as a Kafka producer claimed it,
-- `consumer` for settles, or `unauthenticated`. Rows from before this migration say `unrecorded`.
ALTER TABLE commands ADD COLUMN principal text NOT NULL DEFAULT 'unrecorded'
  CHECK (char_length(principal) BETWEEN 1 AND 100);

-- A user's token version: every access and refresh token carries the version it was issued
-- under, and is refused once the version moved on (disable, role change, `npm run users --
-- logout`). `services` binds a service account to the services it may act for (NULL: all).
ALTER TABLE users
  ADD COLUMN token_version integer NOT NULL DEFAULT 0,
  ADD COLUMN services bigint[] CHECK (services IS NULL OR cardinality(services) BETWEEN 1 AND 1000);

-- Refresh tokens rotate: each is used once. A token of a family used twice means it was
-- stolen; the whole family is revoked. Rows expire with their tokens.
CREATE TABLE refresh_tokens (
  jti uuid PRIMARY KEY,
  family uuid NOT NULL,
  user_id bigint NOT NULL REFERENCES users (id),
  issued_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at timestamptz,
  revoked_at timestamptz
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_expiry ON refresh_tokens (expires_at);
