/**
 * Which anchor keys the operator commands use: the key `npm run anchor` signs with, and the public
 * keys `npm run verify` trusts. The built-in development key counts only where the configuration
 * allows the development secrets (ALLOW_DEV_SECRETS=true, never in production), as everywhere else.
 */
import { type Config, PUBLIC_SECRETS } from '../config.ts';
import { type AnchorSigner, anchorSigner, keyIdOfPublicKey } from '../ledger/anchor-signing.ts';

function devKeyAllowed(config: Config): boolean {
  return config.allowDevSecrets && config.env !== 'production';
}

/** The signer, or why there is none: the built-in key where the development secrets are not allowed. */
export function anchorSignerOf(config: Config): AnchorSigner | string {
  if (PUBLIC_SECRETS.has(config.anchors.signingKey) && !devKeyAllowed(config))
    return 'ANCHOR_SIGNING_KEY: must be set to a key of your own (the built-in one is public; ALLOW_DEV_SECRETS=true allows it for local use)';
  return anchorSigner(config.anchors.signingKey);
}

/** Public keys (base64) by key id: ANCHOR_PUBLIC_KEYS, and the signing key's where it counts. */
export function trustedAnchorKeys(config: Config): Map<string, string> {
  const keys = new Map(config.anchors.publicKeys.map((key) => [keyIdOfPublicKey(Buffer.from(key, 'base64')), key]));
  const signer = anchorSignerOf(config);
  if (typeof signer !== 'string') keys.set(signer.keyId, signer.publicKeyBase64);
  return keys;
}
