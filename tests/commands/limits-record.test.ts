import { describe, expect, it } from 'vitest';
import { INTERNAL_PROOF_HEADER, InternalCommandSigner } from '../../src/commands/internal-proof.ts';
import { limitsRecordMessage, parseLimitsRecord } from '../../src/commands/limits-record.ts';

const SECRET = 'test-only-limits-record-secret-0123456789';
const signer = new InternalCommandSigner({ secret: SECRET, acceptedSecrets: [] });
const lowered = { amountMinorMax: 5_000, balanceMinorMax: 1_000_000_000_000_000, alertsPerUserMax: 20 };

describe('limits records', () => {
  it('round-trips a signed record to the partition it names', () => {
    const message = limitsRecordMessage(lowered, 41n, 3, signer);
    expect(message.partition).toBe(3);
    const proof = message.headers[INTERNAL_PROOF_HEADER];
    const parsed = parseLimitsRecord(Buffer.from(message.value), proof, signer, 3);
    expect(parsed).toEqual({ ok: true, record: { limits: lowered, supersedes: 41n } });
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

  it('refuses malformed records with a message, never a throw', () => {
    for (const value of ['', 'not json', '{"type":"limits"}', '{"type":"limits","version":1,"supersedes":"1e3"}'])
      expect(parseLimitsRecord(Buffer.from(value), undefined, signer, 0)).toMatchObject({ ok: false });
    expect(parseLimitsRecord(null, undefined, signer, 0)).toMatchObject({ ok: false });
  });
});
