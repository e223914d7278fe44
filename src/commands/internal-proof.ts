/**
 * Internal commands (a transfer's settle) move money without a balance check, so they must be
 * provably made by the consumer, not by whoever can publish to the command topic. The consumer
 * signs each one with an HMAC-SHA256 over what the command does, with its key ring's signing key
 * (key-ring.ts), and sends it in a header; the consumer accepts an internal command only with a
 * valid proof made with a key its partition accepted at that offset (limits-record.ts). The proof
 * names its key, so only that one is tried, however many keys a replay knows.
 *
 * Header value: `v1.<key id>.<base64url HMAC>`, where the key id is a short hash of the key, so
 * the verifier knows which key to try and a log line never shows the key itself.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { KeyRing, type KeyRingSecrets } from './key-ring.ts';
import { EXPIRE_ID_PREFIX, SETTLE_ID_PREFIX, type Command } from './schema.ts';

export const INTERNAL_PROOF_HEADER = 'x-internal-proof';
const VERSION = 'v1';

export type InternalCommand = Extract<Command, { type: 'settle' | 'expire' }>;

export function isInternalCommand(command: Command): command is InternalCommand {
  return command.type === 'settle' || command.type === 'expire';
}

/** The transfer a settle completes: its id without the `~settle:` prefix. */
export function sourceTransferId(command: Extract<Command, { type: 'settle' }>): string {
  return command.id.slice(SETTLE_ID_PREFIX.length);
}

/** The reserve command whose hold an expire returns: its id without the `~expire:` prefix. */
export function sourceReserveId(command: Extract<Command, { type: 'expire' }>): string {
  return command.id.slice(EXPIRE_ID_PREFIX.length);
}

export class InternalCommandSigner {
  readonly keys: KeyRing;

  constructor(keys: KeyRing | KeyRingSecrets) {
    this.keys = keys instanceof KeyRing ? keys : new KeyRing(keys);
  }

  sign(command: InternalCommand): string {
    return this.signFields(commandFields(command));
  }

  /**
   * True only for a well-formed proof over exactly this command, made with a key this process
   * has and `allowed` (the partition's accepted key ids at that offset; null: any) lets verify.
   */
  verify(command: InternalCommand, proof: string | Buffer | undefined, allowed: ReadonlySet<string> | null = null) {
    return this.verifyFields(commandFields(command), proof, allowed);
  }

  /** A proof over fields that decide what a consumer-made message does (a limits record's). */
  signFields(fields: readonly string[]): string {
    const { id, key } = this.keys.signing;
    return `${VERSION}.${id}.${mac(key, fields).toString('base64url')}`;
  }

  verifyFields(
    fields: readonly string[],
    proof: string | Buffer | undefined,
    allowed: ReadonlySet<string> | null = null,
  ) {
    const text = Buffer.isBuffer(proof) ? proof.toString('utf8') : proof;
    const parts = text?.split('.');
    if (parts?.length !== 3 || parts[0] !== VERSION) return false;
    const key = this.keys.get(parts[1]!, allowed)?.key;
    if (!key) return false;
    const given = Buffer.from(parts[2]!, 'base64url');
    const expected = mac(key, fields);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

/** The id of the key a proof names, or null for a proof that is not well-formed. */
export function proofKeyId(proof: string | Buffer | undefined): string | null {
  const text = Buffer.isBuffer(proof) ? proof.toString('utf8') : proof;
  const parts = text?.split('.');
  return parts?.length === 3 && parts[0] === VERSION ? parts[1]! : null;
}

/** Fields separated by a byte no field can contain, after the proof's version. */
function mac(key: Buffer, fields: readonly string[]): Buffer {
  return createHmac('sha256', key).update(fields.join('\u001f')).digest();
}

/** Every field that decides what the command does. */
function commandFields(command: InternalCommand): string[] {
  return command.type === 'settle'
    ? [VERSION, command.id, command.type, String(command.user_id), String(command.amount), sourceTransferId(command)]
    : [
        VERSION,
        command.id,
        command.type,
        String(command.user_id),
        String(command.service_id),
        String(command.order_id),
        sourceReserveId(command),
      ];
}
