/**
 * The hold-expiry sweeper: every HOLD_EXPIRY_SWEEP_MS it looks for open holds past their
 * `expires_at` (one probe of a partial index, empty when none are due) and publishes, for each,
 * a signed internal `expire` command to the user's partition. The command, not the clock,
 * decides: applied in the partition's order, it returns the hold unless a capture or release got
 * there first (sql/0007_hold_expiry.sql).
 *
 * Each consumer sends only the expires of holds whose partition it holds (the partition the
 * reserve came from): its owner is the one that applies them, and n consumers must not send n
 * copies. (Two copies of one expire are still one command, since its id is derived from the
 * reserve's: a rebalance may send one twice.)
 *
 * A hold whose expire was sent is not due again for a back-off that starts at RESEND_AFTER_MS and
 * doubles with each copy, up to RESEND_AFTER_MS_MAX: a copy is sent again in case one was lost,
 * but a partition that stays stuck does not get a copy of every due expire every 30 s into a log
 * that is kept forever. The back-off is kept on the hold itself (`expire_next_at`,
 * `expire_copies`: sql/0023_hold_expiry_backoff.sql), so it holds at any backlog, across
 * restarts and rebalances, and a sweep reads the due holds of its own partitions only, by index:
 * however many other partitions' holds are due, they take none of its places.
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

// Due: open, and its next copy's time has come (its expiry, or the back-off after the last copy).
// `$2` stands in for now() in tests that move the clock; `$3` null means every partition.
const SQL_DUE_HOLDS = `
  SELECT id, user_id, service_id, order_id, reserve_command_id FROM reservations
  WHERE status = 'open' AND expire_next_at IS NOT NULL
    AND expire_next_at <= coalesce($2::timestamptz, now())
    AND ($3::integer[] IS NULL OR source_partition = ANY($3::integer[]))
  ORDER BY expire_next_at, id LIMIT $1`;
// After a copy: one more, and the next one not before the back-off after it (resendAfterMs).
const SQL_SENT = `
  UPDATE reservations
  SET expire_copies = expire_copies + 1,
      expire_next_at = coalesce($2::timestamptz, now())
        + make_interval(secs => least($3::float8 * power(2, expire_copies), $4::float8) / 1000)
  WHERE id = ANY($1::bigint[]) AND status = 'open'`;

interface DueHold {
  id: string;
  user_id: string;
  service_id: string;
  order_id: string;
  reserve_command_id: string;
}

export interface HoldExpiryDeps {
  readonly pool: pg.Pool;
  readonly sink: { sendCore(batch: readonly TopicMessages[]): Promise<void> };
  readonly signer: InternalCommandSigner;
  readonly commandTopic: string;
  readonly sweepMs: number;
  readonly batchMax: number;
  readonly log: Logger;
  /** The command partitions this consumer holds now; unset: every partition (a lone sweeper). */
  readonly ownedPartitions?: () => readonly number[];
}

export class HoldExpirySweeper {
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

  /**
   * One look: publishes the expires of up to batchMax due holds of its partitions, oldest first,
   * and puts each into its back-off; returns how many. `nowMs` stands in for the database's
   * clock (tests); by default the database decides what is due, as it stamped the expiries.
   */
  async sweepOnce(nowMs?: number): Promise<number> {
    const now = nowMs === undefined ? null : new Date(nowMs);
    const owned = this.deps.ownedPartitions?.() ?? null;
    if (owned !== null && owned.length === 0) return 0;
    const { rows: due } = await this.deps.pool.query<DueHold>({
      name: 'q_due_holds',
      text: SQL_DUE_HOLDS,
      values: [this.deps.batchMax, now, owned],
    });
    if (due.length === 0) return 0;
    const commands: Extract<Command, { type: 'expire' }>[] = due.map((r) => ({
      id: expireIdOf(r.reserve_command_id),
      type: 'expire' as const,
      user_id: Number(r.user_id),
      service_id: Number(r.service_id),
      order_id: Number(r.order_id),
    }));
    const messages = commands.map((c) => internalCommandMessage(c, this.deps.signer.sign(c)));
    await this.deps.sink.sendCore([{ topic: this.deps.commandTopic, messages }]);
    // After the send: a failed send leaves the holds due, and the next look sends them.
    await this.deps.pool.query({
      name: 'q_expires_sent',
      text: SQL_SENT,
      values: [due.map((r) => r.id), now, RESEND_AFTER_MS, RESEND_AFTER_MS_MAX],
    });
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
