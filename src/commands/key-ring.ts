/**
 * The keys of the HMACs that prove what the service itself made: internal commands (settles,
 * expires), the partitions' settings records (limits-record.ts), and the gateway's attestation of
 * who sent a command (principal-proof.ts). One ring per process, shared by everything that signs
 * or verifies, so a change of the signing key (SigningKeyWatch) reaches all of them at once.
 *
 * Each key has an id: a short hash of it, safe to log and to record in the log, never the key.
 * A process knows its current key (INTERNAL_COMMAND_SECRET), the one being rotated in or out
 * (INTERNAL_COMMAND_SECRET_PREVIOUS), and, in a replay only, older ones (INTERNAL_COMMAND_KEYS).
 * It signs with the first of its live keys that every partition accepts; which keys a message
 * may be verified with is decided per partition and offset, from the log (limits-record.ts).
 */
import { createHash } from 'node:crypto';

export interface KeyRingSecrets {
  readonly secret: string;
  /** Keys accepted live besides the current one (the one being rotated). */
  readonly acceptedSecrets: readonly string[];
  /** Keys a replay may meet in older parts of the log (INTERNAL_COMMAND_KEYS): never signed with. */
  readonly replaySecrets?: readonly string[];
}

export interface RingKey {
  readonly id: string;
  readonly key: Buffer;
}

export class KeyRing {
  private readonly byId: ReadonlyMap<string, RingKey>;
  /** The current and the rotating key, in that order: the keys a live process accepts and may sign with. */
  readonly live: readonly RingKey[];
  private signingId: string;

  /** `withReplayKeys`: a replay's ring, which also verifies with INTERNAL_COMMAND_KEYS. */
  constructor(secrets: KeyRingSecrets, options: { withReplayKeys: boolean } = { withReplayKeys: false }) {
    const ring = (secret: string): RingKey => ({ id: keyIdOf(secret), key: Buffer.from(secret, 'utf8') });
    this.live = dedupe([secrets.secret, ...secrets.acceptedSecrets].map(ring));
    const older = options.withReplayKeys ? (secrets.replaySecrets ?? []) : [];
    const all = dedupe([...this.live, ...older.map(ring)]);
    this.byId = new Map(all.map((k) => [k.id, k]));
    this.signingId = this.live[0]!.id;
  }

  /** The key signatures are made with now. */
  get signing(): RingKey {
    return this.byId.get(this.signingId)!;
  }

  /** Signs with `id` from now on: one of the live keys. */
  useSigningKey(id: string): void {
    if (!this.live.some((k) => k.id === id)) throw new Error(`key ${id} is not one of this process's live keys`);
    this.signingId = id;
  }

  /** The key of `id`, if this process has it and `allowed` (null: any) lets it verify. */
  get(id: string, allowed: ReadonlySet<string> | null = null): RingKey | undefined {
    if (allowed !== null && !allowed.has(id)) return undefined;
    return this.byId.get(id);
  }

  /** Every key this process has that `allowed` (null: any) lets verify. */
  verifying(allowed: ReadonlySet<string> | null = null): RingKey[] {
    return [...this.byId.values()].filter((k) => allowed === null || allowed.has(k.id));
  }

  /** The ids of the live keys, sorted: what a consumer records as accepted on its partitions. */
  liveIds(): string[] {
    return this.live.map((k) => k.id).sort();
  }
}

/** A key's id: the first 8 characters of its SHA-256 in base64url (48 bits: no key is found from it). */
export function keyIdOf(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url').slice(0, 8);
}

function dedupe(keys: RingKey[]): RingKey[] {
  const seen = new Set<string>();
  return keys.filter((k) => !seen.has(k.id) && seen.add(k.id));
}
