/**
 * What a chunk writes only when it has refunds or freezes (sql/0018_refunds_and_freezes.sql):
 * a call each, after ledger_write_chunk, in the chunk's transaction. They are rare, so chunks of
 * deposits, reserves and captures keep their four round trips.
 */
import type pg from 'pg';
import type { RefundChange } from '../core.ts';
import type { FreezeRecord } from '../state.ts';

const SQL_WRITE_REFUNDS = 'SELECT ledger_write_refunds($1, $2, $3, $4)';

/**
 * What the chunk refunded of each order, recorded on the order's captures (oldest first);
 * throws (SQLSTATE LI001) if the captures in the database cannot hold it.
 */
export async function writeRefunds(db: pg.PoolClient, refunds: readonly RefundChange[]): Promise<void> {
  if (refunds.length === 0) return;
  await db.query({
    name: 'ledger_write_refunds',
    text: SQL_WRITE_REFUNDS,
    values: [
      refunds.map((o) => o.userId),
      refunds.map((o) => o.serviceId),
      refunds.map((o) => o.orderId),
      refunds.map((o) => String(o.amount)),
    ],
  });
}

const SQL_WRITE_FREEZES = 'SELECT ledger_write_freezes($1, $2, $3, $4, $5, $6, $7, $8)';

export interface FreezeWrite {
  /** The final state of each changed account: its available account's id and its reason (null: unfrozen). */
  readonly accounts: ReadonlyArray<{ readonly id: number; readonly reason: string | null }>;
  /** Every change, in order, with who made it. */
  readonly changes: ReadonlyArray<FreezeRecord & { readonly principal: string }>;
  readonly at: Date;
}

export async function writeFreezes(db: pg.PoolClient, write: FreezeWrite): Promise<void> {
  if (write.changes.length === 0) return;
  await db.query({
    name: 'ledger_write_freezes',
    text: SQL_WRITE_FREEZES,
    values: [
      write.accounts.map((a) => a.id),
      write.accounts.map((a) => a.reason),
      write.changes.map((c) => c.userId),
      write.changes.map((c) => c.commandId),
      write.changes.map((c) => c.frozen),
      write.changes.map((c) => c.reason),
      write.changes.map((c) => c.principal),
      write.at,
    ],
  });
}
