/**
 * Who sent a command, as the consumer records it. The gateway knows the authenticated caller
 * and attests it in headers, with an HMAC keyed like internal commands' proofs, so a producer
 * cannot claim to be a user. Any other producer may name itself in `x-producer`; the consumer
 * records that as a claim (`producer:<name>`), or `unauthenticated` when there is none.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const PRINCIPAL_HEADER = 'x-balance-principal';
export const PRINCIPAL_PROOF_HEADER = 'x-balance-principal-proof';
export const PRODUCER_HEADER = 'x-producer';
const PRODUCER_NAME = /^[A-Za-z0-9._-]{1,64}$/;
const PRINCIPAL = /^(user|service|admin):[0-9]{1,16}$/;

export class PrincipalAttestation {
  private readonly keys: Buffer[];
  constructor(secrets: { secret: string; previousSecret: string | null }) {
    this.keys = [secrets.secret, ...(secrets.previousSecret ? [secrets.previousSecret] : [])].map((secret) =>
      Buffer.from(secret, 'utf8'),
    );
  }

  /** The headers the gateway sends with a command of `principal` (`role:userId`). */
  headers(commandId: string, principal: string): Record<string, string> {
    return {
      [PRINCIPAL_HEADER]: principal,
      [PRINCIPAL_PROOF_HEADER]: mac(this.keys[0]!, commandId, principal).toString('base64url'),
    };
  }

  /** What to record for a message: the attested principal, a producer's claim, or `unauthenticated`. */
  principalOf(commandId: string, headers: Readonly<Record<string, string | Buffer | undefined>>): string {
    const principal = text(headers[PRINCIPAL_HEADER]);
    const proof = text(headers[PRINCIPAL_PROOF_HEADER]);
    if (principal && proof && PRINCIPAL.test(principal)) {
      const given = Buffer.from(proof, 'base64url');
      if (this.keys.some((key) => equal(given, mac(key, commandId, principal)))) return principal;
    }
    const producer = text(headers[PRODUCER_HEADER]);
    return producer && PRODUCER_NAME.test(producer) ? `producer:${producer}` : 'unauthenticated';
  }
}

function mac(key: Buffer, commandId: string, principal: string): Buffer {
  return createHmac('sha256', key).update(`principal-v1\u001f${commandId}\u001f${principal}`).digest();
}

function equal(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function text(value: string | Buffer | undefined): string | undefined {
  return Buffer.isBuffer(value) ? value.toString('utf8') : value;
}
