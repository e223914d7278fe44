/**
 * The hold-expiry sweeper: every HOLD_EXPIRY_SWEEP_MS it looks for open holds past their
 * `expires_at` (one probe of a partial index, empty when none are due) and publishes, for each,
 * a signed internal `expire` command to the user's partition. The command, not the clock,
 * decides: applied in the partition's order, it returns the hold unless a capture or release got
 * there first (sql/0007_hold_expiry.sql).
 *
 * Every consumer process sweeps; two copies of one expire are one command, since its id is
 * derived from the reserve's. A hold whose expire was sent is left out for RESEND_AFTER_MS, so a
 * partition that lags is not flooded with copies and does not hold up other holds; it is sent
 * again after that in case the first copy was lost.
 */
import type pg from 'pg';
import type { InternalCommandSigner } from '../commands/internal-proof.ts';
import { expireIdOf, type Command } from '../commands/schema.ts';
import type { Logger } from '../log.ts';
import { internalCommandMessage, type TopicMessages } from './outbox.ts';

/** How long a sent expire is trusted to be on its way before it is sent again. */
export const RESEND_AFTER_MS = 30_000;

/** How many sent expires a sweeper remembers, in batches: older ones may be sent again. */
const REMEMBERED_BATCHES = 10;

// Holds already sent for are left out, so one lagging partition's holds, still waiting to be
// applied, never starve the others' of a place in the batch.
const SQL_DUE_HOLDS = `
  SELECT user_id, service_id, order_id, reserve_command_id FROM reservations
  WHERE status = 'open' AND expires_at IS NOT NULL AND expires_at <= now()
    AND reserve_command_id <> ALL($2::text[])
  ORDER BY expires_at LIMIT $1`;

export interface HoldExpiryDeps {
  readonly pool: pg.Pool;
  readonly sink: { sendCore(batch: readonly TopicMessages[]): Promise<void> };
  readonly signer: InternalCommandSigner;
  readonly commandTopic: string;
  readonly sweepMs: number;
  readonly batchMax: number;
  readonly log: Logger;
}

export class HoldExpirySweeper {
  /**
   * Reserve ids whose expire was sent, and when, oldest first: an entry lives RESEND_AFTER_MS,
   * and at most REMEMBERED_BATCHES batches are kept.
   */
  private readonly sent = new Map<string, number>();
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

  /** One look: publishes the expires of due holds not sent recently; returns how many. */
  async sweepOnce(now = Date.now()): Promise<number> {
    const remembered = this.deps.batchMax * REMEMBERED_BATCHES;
    for (const [id, at] of this.sent)
      if (now - at >= RESEND_AFTER_MS || this.sent.size > remembered - this.deps.batchMax) this.sent.delete(id);
    const { rows } = await this.deps.pool.query<{
      user_id: string;
      service_id: string;
      order_id: string;
      reserve_command_id: string;
    }>({ name: 'q_due_holds', text: SQL_DUE_HOLDS, values: [this.deps.batchMax, [...this.sent.keys()]] });
    const commands: Extract<Command, { type: 'expire' }>[] = rows.map((r) => ({
      id: expireIdOf(r.reserve_command_id),
      type: 'expire' as const,
      user_id: Number(r.user_id),
      service_id: Number(r.service_id),
      order_id: Number(r.order_id),
    }));
    if (commands.length === 0) return 0;
    const messages = commands.map((c) => internalCommandMessage(c, this.deps.signer.sign(c)));
    await this.deps.sink.sendCore([{ topic: this.deps.commandTopic, messages }]);
    for (const r of rows) this.sent.set(r.reserve_command_id, now);
    this.published += commands.length;
    return commands.length;
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
