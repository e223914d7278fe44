/**
 * Who sent a command, as the consumer records it. The gateway knows the authenticated caller
 * and attests it in headers, with an HMAC keyed like internal commands' proofs, so a producer
 * cannot claim to be a user. Any other producer may name itself in `x-producer`; the consumer
 * records that as a claim (`producer:<name>`), or `unauthenticated` when there is none.
 *
 * The proof (v2) covers the command's fingerprint, a hash of its whole body, so it vouches for
 * exactly what the gateway sent: copied onto another body it proves nothing. Proofs without a
 * version (v1: the id and the principal only) are read only where the partition's log has no
 * settings record with accepted keys yet (limits-record.ts): messages written before v2, replayed,
 * are attributed as the live run attributed them; live, the first record ends v1 for good.
 * Which keys may verify a proof is decided the same way, per partition and offset.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { KeyRing, type KeyRingSecrets } from './key-ring.ts';

export const PRINCIPAL_HEADER = 'x-balance-principal';
export const PRINCIPAL_PROOF_HEADER = 'x-balance-principal-proof';
export const PRODUCER_HEADER = 'x-producer';
const PRODUCER_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const PRINCIPAL = /^(user|service|admin):[0-9]{1,16}$/;

/** Which proofs count: keys by id (null: any this process has), and whether v1 ones still do. */
export interface ProofTrust {
  readonly allowedKeyIds: ReadonlySet<string> | null;
  readonly v1: boolean;
}

/** Before a partition's first record of accepted keys: any key, and v1 proofs (older logs). */
export const TRUST_BEFORE_RECORDS: ProofTrust = { allowedKeyIds: null, v1: true };

export class PrincipalAttestation {
  readonly keys: KeyRing;
  constructor(keys: KeyRing | KeyRingSecrets) {
    this.keys = keys instanceof KeyRing ? keys : new KeyRing(keys);
  }

  /** The headers the gateway sends with a command of `principal` (`role:userId`). */
  headers(command: AttestedCommand, principal: string): Record<string, string> {
    return {
      [PRINCIPAL_HEADER]: principal,
      [PRINCIPAL_PROOF_HEADER]: `${V2}${macV2(this.keys.signing.key, command, principal).toString('base64url')}`,
    };
  }

  /** What to record for a message: the attested principal, a producer's claim, or `unauthenticated`. */
  principalOf(
    command: AttestedCommand,
    headers: Readonly<Record<string, string | Buffer | undefined>>,
    trust: ProofTrust = TRUST_BEFORE_RECORDS,
  ): string {
    const principal = text(headers[PRINCIPAL_HEADER]);
    const proof = text(headers[PRINCIPAL_PROOF_HEADER]);
    if (principal && proof && PRINCIPAL.test(principal)) {
      const v2 = proof.startsWith(V2);
      const given = Buffer.from(v2 ? proof.slice(V2.length) : proof, 'base64url');
      const expected = (key: Buffer) => (v2 ? macV2(key, command, principal) : macV1(key, command.id, principal));
      if ((v2 || trust.v1) && this.keys.verifying(trust.allowedKeyIds).some((k) => equal(given, expected(k.key))))
        return principal;
    }
    const producer = text(headers[PRODUCER_HEADER]);
    return producer && PRODUCER_NAME.test(producer) ? `producer:${producer}` : 'unauthenticated';
  }
}

/** What a proof covers: the command's id, and its fingerprint (schema.ts: a hash of the whole body). */
export interface AttestedCommand {
  readonly id: string;
  readonly fingerprint: string;
}

const V2 = 'v2.';

function macV2(key: Buffer, command: AttestedCommand, principal: string): Buffer {
  return createHmac('sha256', key)
    .update(`principal-v2\u001f${command.id}\u001f${principal}\u001f${command.fingerprint}`)
    .digest();
}

function macV1(key: Buffer, commandId: string, principal: string): Buffer {
  return createHmac('sha256', key).update(`principal-v1\u001f${commandId}\u001f${principal}`).digest();
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function text(value: string | Buffer | undefined): string | undefined {
  return Buffer.isBuffer(value) ? value.toString('utf8') : value;
}
