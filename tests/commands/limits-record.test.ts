import { describe, expect, it } from 'vitest';
import { INTERNAL_PROOF_HEADER, InternalCommandSigner } from '../../src/commands/internal-proof.ts';
import { limitsRecordMessage, parseLimitsRecord } from '../../src/commands/limits-record.ts';

const SECRET = 'test-only-limits-record-secret-0123456789';
const signer = new InternalCommandSigner({ secret: SECRET, acceptedSecrets: [] });
const limits = { amountMinorMax: 5_000, balanceMinorMax: 1_000_000_000_000_000, alertsPerUserMax: 20 };
const lowered = { limits, acceptedKeyIds: signer.keys.liveIds() };

describe('limits records', () => {
  it('round-trips a signed record to the partition it names', () => {
    const message = limitsRecordMessage(lowered, 41n, 3, signer);
    expect(message.partition).toBe(3);
    const proof = message.headers[INTERNAL_PROOF_HEADER];
    const parsed = parseLimitsRecord(Buffer.from(message.value), proof, signer, 3);
    expect(parsed).toEqual({ ok: true, record: { ...lowered, supersedes: 41n } });
    // The same genuine record copied to another partition proves nothing there.
    expect(parseLimitsRecord(Buffer.from(message.value), proof, signer, 4)).toMatchObject({ ok: false });
  });

  it('refuses a record without a proof, with another key, or with any field changed after signing', () => {
    const message = limitsRecordMessage(lowered, -1n, 0, signer);
    const proof = message.headers[INTERNAL_PROOF_HEADER];
    const other = new InternalCommandSigner({ secret: 'another-limits-record-secret-0123456789', acceptedSecrets: [] });
    expect(parseLimitsRecord(Buffer.from(message.value), undefined, signer, 0).ok).toBe(false);
    expect(parseLimitsRecord(Buffer.from(message.value), proof, other, 0).ok).toBe(false);
    const raised = message.value.replace('"amount_minor_max":5000', '"amount_minor_max":5000000');
    expect(raised).not.toBe(message.value);
    expect(parseLimitsRecord(Buffer.from(raised), proof, signer, 0)).toMatchObject({ ok: false });
    const moved = message.value.replace('"supersedes":"-1"', '"supersedes":"7"');
    expect(parseLimitsRecord(Buffer.from(moved), proof, signer, 0)).toMatchObject({ ok: false });
  });

  it('names the keys its partition accepts, and is refused when signed with a key the partition does not accept', () => {
    const message = limitsRecordMessage(lowered, 41n, 3, signer);
    expect(JSON.parse(message.value).accepted_keys).toEqual(signer.keys.liveIds());
    const proof = message.headers[INTERNAL_PROOF_HEADER];
    expect(parseLimitsRecord(Buffer.from(message.value), proof, signer, 3, new Set(['otherkey']))).toMatchObject({
      ok: false,
    });
    expect(parseLimitsRecord(Buffer.from(message.value), proof, signer, 3, new Set(signer.keys.liveIds())).ok).toBe(
      true,
    );
    // A changed key list breaks the proof like any other field.
    const widened = message.value.replace('"accepted_keys":[', '"accepted_keys":["AAAAAAAA",');
    expect(parseLimitsRecord(Buffer.from(widened), proof, signer, 3)).toMatchObject({ ok: false });
  });

  it('still reads a record of format 1 (limits only): it leaves the accepted keys as they were', () => {
    const v1 = JSON.stringify({
      type: 'limits',
      version: 1,
      supersedes: '-1',
      amount_minor_max: 5_000,
      balance_minor_max: 1_000_000_000_000_000,
      alerts_per_user_max: 20,
    });
    const proof = signer.signFields(['limits', '1', 'partition=0', '-1', '5000', '1000000000000000', '20']);
    expect(parseLimitsRecord(Buffer.from(v1), proof, signer, 0)).toEqual({
      ok: true,
      record: { limits, acceptedKeyIds: null, supersedes: -1n },
    });
  });

  it('refuses malformed records with a message, never a throw', () => {
    for (const value of ['', 'not json', '{"type":"limits"}', '{"type":"limits","version":1,"supersedes":"1e3"}'])
      expect(parseLimitsRecord(Buffer.from(value), undefined, signer, 0)).toMatchObject({ ok: false });
    expect(parseLimitsRecord(null, undefined, signer, 0)).toMatchObject({ ok: false });
  });
});
