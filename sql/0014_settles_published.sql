-- How far each partition of the command topic has its transfers' settles acknowledged by Kafka:
-- every applied transfer at or below `published_through` has its settle in the log, so a
-- command for the recipient sent now lands behind it. The consumer raises it after each flush
-- that published settles; a poll calls a transfer applied only once it is covered (or its
-- settle has been applied). Not part of the ledger: a rebuild starts without it, and its
-- transfers are covered by their settles' rows.
CREATE TABLE settles_published (
  source_partition integer PRIMARY KEY CHECK (source_partition >= 0),
  published_through bigint NOT NULL CHECK (published_through >= 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);
