-- The limits each partition of the command topic decides with (AMOUNT_MINOR_MAX,
-- BALANCE_MINOR_MAX, ALERTS_PER_USER_MAX), as set by the last `limits` record the consumer
-- applied from that partition (src/commands/limits-record.ts). The log is the truth: a rebuild
-- into an empty database fills this table again from the same records, so it decides with the
-- same limits as the live run. No row: the built-in defaults, as before the first record.
CREATE TABLE decision_limits (
  source_topic text NOT NULL CHECK (char_length(source_topic) BETWEEN 1 AND 249),
  source_partition integer NOT NULL CHECK (source_partition >= 0),
  -- The offset of the record in force; a redelivered older record never replaces a newer one.
  record_offset bigint NOT NULL CHECK (record_offset >= 0),
  amount_minor_max bigint NOT NULL CHECK (amount_minor_max BETWEEN 1 AND 9007199254740991),
  balance_minor_max bigint NOT NULL CHECK (balance_minor_max BETWEEN 1 AND 9007199254740991),
  alerts_per_user_max integer NOT NULL CHECK (alerts_per_user_max BETWEEN 0 AND 1000),
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_topic, source_partition)
);
