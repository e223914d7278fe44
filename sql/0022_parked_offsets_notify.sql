-- Any change to parked_offsets notifies the channel `balance_parked_offsets`, at commit. The
-- consumer keeps the parked offsets of its topic in memory and reads them again when notified
-- (src/consumer/parking.ts, ParkedOffsetsWatch), instead of asking PostgreSQL once per chunk.
-- A statement-level trigger, so a park made with plain SQL (not `npm run park`) counts too. The
-- consumer's own `skipped_at` updates change nothing it keeps, so they notify nobody.
CREATE FUNCTION parked_offsets_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('balance_parked_offsets', '');
  RETURN NULL;
END
$$;

CREATE TRIGGER parked_offsets_changed
AFTER INSERT OR DELETE OR TRUNCATE
  OR UPDATE OF source_topic, source_partition, source_offset, reason, parked_by ON parked_offsets
FOR EACH STATEMENT EXECUTE FUNCTION parked_offsets_changed();
