/**
 * The Ed25519 key that signs anchors, made from ANCHOR_SIGNING_KEY: the seed is the secret's
 * SHA-256, so any random string of 32 characters or more is a key. The key id names the public
 * key ("ed25519:" and the first 16 hex digits of its SHA-256), so a third party holding several
 * public keys knows which one an anchor needs.
 */
import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';

/** PKCS #8 DER of an Ed25519 private key, up to its 32-byte seed (RFC 8410). */
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** SubjectPublicKeyInfo DER of an Ed25519 public key, up to its 32 bytes. */
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface AnchorSigner {
  readonly keyId: string;
  /** The raw 32-byte public key, base64: what the docs publish and the export script takes. */
  readonly publicKeyBase64: string;
  sign(message: Buffer): Buffer;
}

export function anchorSigner(secret: string): AnchorSigner {
  const seed = createHash('sha256').update(secret, 'utf8').digest();
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: 'der',
    type: 'pkcs8',
  });
  const raw = createPublicKey(privateKey).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519_PREFIX.length);
  return {
    keyId: keyIdOfPublicKey(raw),
    publicKeyBase64: raw.toString('base64'),
    sign: (message) => sign(null, message, privateKey),
  };
}

export function keyIdOfPublicKey(raw: Buffer): string {
  return `ed25519:${createHash('sha256').update(raw).digest('hex').slice(0, 16)}`;
}

function publicKeyOf(base64: string): KeyObject {
  return createPublicKey({
    key: Buffer.concat([SPKI_ED25519_PREFIX, Buffer.from(base64, 'base64')]),
    format: 'der',
    type: 'spki',
  });
}

export function verifyAnchorSignature(publicKeyBase64: string, message: Buffer, signature: Buffer): boolean {
  return verify(null, message, publicKeyOf(publicKeyBase64), signature);
}
