/**
 * Which key this process signs with: the first of its live keys (INTERNAL_COMMAND_SECRET, then
 * INTERNAL_COMMAND_SECRET_PREVIOUS) that every partition of the command topic accepts, as the
 * partitions' settings records say (decision_limits.accepted_key_ids, sql/0025). Gateways (their
 * attestations of who sent a command) and consumers (settles, expires, records) both use it.
 *
 * So a key rotation cannot drop commands: a process given a new key keeps signing with the old
 * one until every partition has recorded the new one as accepted, then switches by itself. And a
 * process none of whose keys every partition accepts (a gateway given a new key the consumers do
 * not have yet, or a retired key) knows it at once: `accepted` is false, its readiness check
 * fails, the metric says so, and a gateway refuses commands with 503 instead of publishing what
 * the consumers would dead-letter (docs/operations.md, "Rotating the internal key").
 *
 * A partition without a record that names keys says nothing yet: it accepts any key of its
 * consumer's, and is left out of the choice.
 */
import type pg from 'pg';
import type { KeyRing } from './commands/key-ring.ts';
import type { Logger } from './log.ts';

/** How often the watch reads the partitions' accepted keys again. */
export const SIGNING_KEY_REFRESH_MS = 5_000;

const SQL_ACCEPTED_KEYS = `
  SELECT source_partition, accepted_key_ids FROM decision_limits
  WHERE source_topic = $1 AND accepted_key_ids IS NOT NULL`;

export interface SigningKeyChoice {
  /** The key id to sign with. */
  readonly id: string;
  /** False when no live key of this process is accepted by every partition that says. */
  readonly accepted: boolean;
  /** The partitions that accept none of this process's live keys. */
  readonly refusedBy: readonly number[];
}

/** The first of `live` (in order of preference) that every partition in `accepted` accepts. */
export function chooseSigningKey(
  live: readonly string[],
  accepted: ReadonlyMap<number, readonly string[]>,
): SigningKeyChoice {
  const sets = [...accepted.values()].map((ids) => new Set(ids));
  const everywhere = live.find((id) => sets.every((set) => set.has(id)));
  if (everywhere !== undefined) return { id: everywhere, accepted: true, refusedBy: [] };
  const refusedBy = [...accepted].filter(([, ids]) => !live.some((id) => ids.includes(id))).map(([p]) => p);
  // None is accepted everywhere: the one accepted by the most partitions loses the fewest messages.
  const best = [...live].sort((a, b) => countWith(sets, b) - countWith(sets, a))[0]!;
  return { id: best, accepted: false, refusedBy: refusedBy.sort((a, b) => a - b) };
}

function countWith(sets: ReadonlyArray<ReadonlySet<string>>, id: string): number {
  return sets.filter((set) => set.has(id)).length;
}

export class SigningKeyWatch {
  private timer: NodeJS.Timeout | null = null;
  private choice: SigningKeyChoice;

  constructor(
    private readonly deps: {
      readonly pool: pg.Pool;
      readonly topic: string;
      readonly keys: KeyRing;
      readonly log: Logger;
      readonly refreshMs?: number;
    },
  ) {
    this.choice = { id: deps.keys.signing.id, accepted: true, refusedBy: [] };
  }

  /** Whether the partitions accept what this process signs now. */
  get accepted(): boolean {
    return this.choice.accepted;
  }

  /** Why they do not, for /readyz and the 503; null while they do. */
  get problem(): string | null {
    if (this.choice.accepted) return null;
    return `partitions ${this.choice.refusedBy.join(', ')} of the command topic accept none of this process's keys (INTERNAL_COMMAND_SECRET, INTERNAL_COMMAND_SECRET_PREVIOUS); see docs/operations.md, "Rotating the internal key"`;
  }

  /** Reads the partitions' keys once (a failure leaves the built-in choice), then every refreshMs. */
  async start(): Promise<void> {
    await this.refresh().catch((error: unknown) =>
      this.deps.log.warn(
        { err: error },
        'could not read which keys the partitions accept; signing with the current key',
      ),
    );
    this.timer = setInterval(() => {
      void this.refresh().catch((error: unknown) =>
        this.deps.log.warn({ err: error }, 'could not read which keys the partitions accept; the last choice stands'),
      );
    }, this.deps.refreshMs ?? SIGNING_KEY_REFRESH_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async refresh(): Promise<SigningKeyChoice> {
    const { rows } = await this.deps.pool.query<{ source_partition: number; accepted_key_ids: string[] }>({
      name: 'signing_key_accepted_keys',
      text: SQL_ACCEPTED_KEYS,
      values: [this.deps.topic],
    });
    const accepted = new Map(rows.map((r) => [r.source_partition, r.accepted_key_ids]));
    const next = chooseSigningKey(
      this.deps.keys.live.map((k) => k.id),
      accepted,
    );
    const previous = this.choice;
    this.choice = next;
    this.deps.keys.useSigningKey(next.id);
    if (next.id !== previous.id || next.accepted !== previous.accepted) this.report(next);
    return next;
  }

  private report(choice: SigningKeyChoice): void {
    if (choice.accepted) this.deps.log.info({ keyId: choice.id }, 'signing with the key every partition accepts');
    else
      this.deps.log.error({ keyId: choice.id, refusedBy: choice.refusedBy }, `OPERATOR ACTION NEEDED: ${this.problem}`);
  }
}
