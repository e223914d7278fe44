/**
 * The hold-expiry sweeper: every HOLD_EXPIRY_SWEEP_MS it looks for open holds past their
 * `expires_at` (one probe of a partial index, empty when none are due) and publishes, for each,
 * a signed internal `expire` command to the user's partition. The command, not the clock,
 * decides: applied in the partition's order, it returns the hold unless a capture or release got
 * there first (sql/0007_hold_expiry.sql).
 *
 * Each consumer sends only the expires of users whose partition it holds: the owner is the one
 * that will apply them, and n consumers must not send n copies. (Two copies of one expire are
 * still one command, since its id is derived from the reserve's: a rebalance may send one twice.)
 * A hold whose expire was sent is left out for a back-off that starts at RESEND_AFTER_MS and
 * doubles with each copy, up to RESEND_AFTER_MS_MAX: a copy is sent again in case one was lost,
 * but a partition that stays stuck does not get a copy of every due expire every 30 s into a
 * log that is kept forever, and its holds do not hold up the other partitions'.
 */
import type pg from 'pg';
import type { InternalCommandSigner } from '../commands/internal-proof.ts';
import { expireIdOf, type Command } from '../commands/schema.ts';
import type { Logger } from '../log.ts';
import { internalCommandMessage, type TopicMessages } from './outbox.ts';

/** How long a sent expire is trusted to be on its way before it is sent again, the first time. */
export const RESEND_AFTER_MS = 30_000;
/** The longest wait between copies of one expire. */
export const RESEND_AFTER_MS_MAX = 60 * 60_000;

/** How long after its `copies`-th copy an expire may be sent again. */
export function resendAfterMs(copies: number): number {
  return Math.min(RESEND_AFTER_MS * 2 ** Math.max(0, copies - 1), RESEND_AFTER_MS_MAX);
}

/** How many sent expires a sweeper remembers, in batches: older ones may be sent again. */
const REMEMBERED_BATCHES = 10;

/** How many pages of due holds one look reads at most, looking for its own partitions' holds. */
const SWEEP_PAGES_MAX = 10;

// Holds already sent for are left out, so one lagging partition's holds, still waiting to be
// applied, never starve the others' of a place in the batch. Paged by (expires_at, id): holds of
// other consumers' partitions ahead of ours are read past, not taken for ours.
const SQL_DUE_HOLDS = `
  SELECT user_id, service_id, order_id, reserve_command_id, expires_at::text AS expires_at FROM reservations
  WHERE status = 'open' AND expires_at IS NOT NULL AND expires_at <= now()
    AND reserve_command_id <> ALL($2::text[])
    AND ($3::timestamptz IS NULL OR (expires_at, reserve_command_id) > ($3::timestamptz, $4::text))
  ORDER BY expires_at, reserve_command_id LIMIT $1`;

interface DueHold {
  user_id: string;
  service_id: string;
  order_id: string;
  reserve_command_id: string;
  expires_at: string;
}

export interface HoldExpiryDeps {
  readonly pool: pg.Pool;
  readonly sink: { sendCore(batch: readonly TopicMessages[]): Promise<void> };
  readonly signer: InternalCommandSigner;
  readonly commandTopic: string;
  readonly sweepMs: number;
  readonly batchMax: number;
  readonly log: Logger;
  /** Whether this consumer holds `userId`'s partition now; unset: every user (a lone sweeper). */
  readonly ownsUser?: (userId: number) => boolean;
}

export class HoldExpirySweeper {
  /**
   * Reserve ids whose expire was sent: when last, and how many copies, least recent first. At
   * most REMEMBERED_BATCHES batches are kept; a forgotten hold starts its back-off again.
   */
  private readonly sent = new Map<string, { at: number; copies: number }>();
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Expire commands published since start. */
  published = 0;

  constructor(private readonly deps: HoldExpiryDeps) {}

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.sweeping;
  }

  /** One look: publishes the expires of due holds of its users not sent recently; returns how many. */
  async sweepOnce(now = Date.now()): Promise<number> {
    const mine = await this.dueHoldsOfMine(now);
    if (mine.length === 0) return 0;
    const commands: Extract<Command, { type: 'expire' }>[] = mine.map((r) => ({
      id: expireIdOf(r.reserve_command_id),
      type: 'expire' as const,
      user_id: Number(r.user_id),
      service_id: Number(r.service_id),
      order_id: Number(r.order_id),
    }));
    const messages = commands.map((c) => internalCommandMessage(c, this.deps.signer.sign(c)));
    await this.deps.sink.sendCore([{ topic: this.deps.commandTopic, messages }]);
    for (const r of mine) {
      const copies = (this.sent.get(r.reserve_command_id)?.copies ?? 0) + 1;
      this.sent.delete(r.reserve_command_id);
      this.sent.set(r.reserve_command_id, { at: now, copies });
    }
    this.published += commands.length;
    return commands.length;
  }

  /** Up to batchMax due holds of this consumer's users, not in back-off, oldest first. */
  private async dueHoldsOfMine(now: number): Promise<DueHold[]> {
    const owns = this.deps.ownsUser ?? (() => true);
    const excluded = this.inBackOff(now);
    const mine: DueHold[] = [];
    let after: DueHold | null = null;
    for (let page = 0; page < SWEEP_PAGES_MAX && mine.length < this.deps.batchMax; page += 1) {
      const values: unknown[] = [
        this.deps.batchMax,
        excluded,
        after?.expires_at ?? null,
        after?.reserve_command_id ?? null,
      ];
      const { rows } = await this.deps.pool.query<DueHold>({ name: 'q_due_holds', text: SQL_DUE_HOLDS, values });
      mine.push(...rows.filter((r) => owns(Number(r.user_id))));
      if (rows.length < this.deps.batchMax) break;
      after = rows.at(-1)!;
    }
    return mine.slice(0, this.deps.batchMax);
  }

  /** The reserve ids whose last copy is still within its back-off, forgetting the oldest past the bound. */
  private inBackOff(now: number): string[] {
    const remembered = this.deps.batchMax * REMEMBERED_BATCHES;
    while (this.sent.size > remembered - this.deps.batchMax) this.sent.delete(this.sent.keys().next().value!);
    return [...this.sent].filter(([, s]) => now - s.at < resendAfterMs(s.copies)).map(([id]) => id);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.sweeping = this.sweepOnce()
        .then((count) => {
          if (count > 0) this.deps.log.info({ holds: count }, 'published expire commands for holds past their expiry');
        })
        .catch((error: unknown) =>
          this.deps.log.warn({ err: error }, 'the hold-expiry sweep failed; it is tried again at the next sweep'),
        )
        .finally(() => this.schedule());
    }, this.deps.sweepMs);
    this.timer.unref();
  }
}
