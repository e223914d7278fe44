-- Offsets an operator parked, with who, when and why: the audit trail of every command the
-- consumer skipped on purpose.
--
-- Parking is for a message the consumer cannot get past because of a bug in this service or an
-- outage that only one message triggers (anything the consumer can classify, it isolates by
-- itself). The consumer dead-letters a parked message (x-error-code: parked) instead of applying
-- it, and records when it did. The command is NOT decided: it gets no reply and no row in
-- `commands`, so once the cause is fixed `npm run dlq -- redrive` applies it under its own id.
CREATE TABLE parked_offsets (
  source_topic text NOT NULL CHECK (char_length(source_topic) BETWEEN 1 AND 249),
  source_partition integer NOT NULL CHECK (source_partition >= 0),
  source_offset bigint NOT NULL CHECK (source_offset >= 0),
  reason text NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
  parked_by text NOT NULL CHECK (char_length(parked_by) BETWEEN 1 AND 200),
  parked_at timestamptz NOT NULL DEFAULT now(),
  -- Set by the consumer when it skipped the message.
  skipped_at timestamptz,
  PRIMARY KEY (source_topic, source_partition, source_offset)
);
