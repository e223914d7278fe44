/**
 * Internal commands (a transfer's settle) move money without a balance check, so they must be
 * provably made by the consumer, not by whoever can publish to the command topic. The consumer
 * signs each one with an HMAC-SHA256 over what the command does, keyed by
 * INTERNAL_COMMAND_SECRET, and sends it in a header; the consumer accepts an internal command
 * only with a valid proof. Older keys (INTERNAL_COMMAND_SECRET_PREVIOUS, INTERNAL_COMMAND_KEYS)
 * are still accepted, however many: the proof names its key, so only that one is tried.
 *
 * Header value: `v1.<key id>.<base64url HMAC>`, where the key id is a short hash of the key, so
 * the verifier knows which key to try and a log line never shows the key itself.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
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
  private readonly signing: { id: string; key: Buffer };
  private readonly accepted: ReadonlyMap<string, Buffer>;

  constructor(secrets: { secret: string; acceptedSecrets: readonly string[] }) {
    const keys = [secrets.secret, ...secrets.acceptedSecrets].map((secret) => ({
      id: keyId(secret),
      key: Buffer.from(secret, 'utf8'),
    }));
    this.signing = keys[0]!;
    this.accepted = new Map(keys.map((k) => [k.id, k.key]));
  }

  sign(command: InternalCommand): string {
    return this.signFields(commandFields(command));
  }

  /** True only for a well-formed proof, made with an accepted key, over exactly this command. */
  verify(command: InternalCommand, proof: string | Buffer | undefined): boolean {
    return this.verifyFields(commandFields(command), proof);
  }

  /** A proof over fields that decide what a consumer-made message does (a limits record's). */
  signFields(fields: readonly string[]): string {
    return `${VERSION}.${this.signing.id}.${mac(this.signing.key, fields).toString('base64url')}`;
  }

  verifyFields(fields: readonly string[], proof: string | Buffer | undefined): boolean {
    const text = Buffer.isBuffer(proof) ? proof.toString('utf8') : proof;
    const parts = text?.split('.');
    if (parts?.length !== 3 || parts[0] !== VERSION) return false;
    const key = this.accepted.get(parts[1]!);
    if (!key) return false;
    const given = Buffer.from(parts[2]!, 'base64url');
    const expected = mac(key, fields);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

function keyId(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url').slice(0, 8);
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
