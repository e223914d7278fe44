/**
 * Everything a decided chunk writes, in one round trip: a call of `ledger_write_chunk`
 * (sql/functions/ledger_write_chunk.sql), which runs the chunk's inserts and updates in the documented
 * order inside the caller's transaction. A chunk used to write with up to eleven statements.
 */
import type pg from 'pg';
import type { AccountKey } from '../core.ts';
import { isBoundedAccount } from '../core.ts';
import type { AlertState } from '../alerts.ts';
import type { ReservationRecord } from '../state.ts';
import type { NewCommandRow } from './commands.ts';
import { type BalanceEventRow, eventRowsJson } from './events.ts';

export interface PostingRow {
  readonly commandId: string;
  readonly debitAccountId: number;
  readonly creditAccountId: number;
  readonly amount: bigint;
  /** The debit side's balance right after this posting, for a user's available or reserved account. */
  readonly debitBalanceAfter: bigint | null;
  readonly creditBalanceAfter: bigint | null;
  /** The version the command took its user to (sql/0011_version_at.sql). */
  readonly versionAfter: bigint;
}

/** A history row; its id is allocated by the write, in the order rows are given. */
export interface TransactionRow {
  readonly commandId: string;
  readonly userId: number;
  readonly amount: bigint;
  readonly type: string;
  readonly serviceId: number | null;
  readonly orderId: number | null;
  readonly counterpartyId: number | null;
  readonly comment: string | null;
}

export interface BalanceChange {
  readonly id: number;
  readonly key: AccountKey;
  readonly balance: bigint;
  readonly delta: bigint;
  readonly version?: bigint;
}

export interface AlertChanges {
  readonly upserts: readonly AlertState[];
  readonly deletes: readonly string[];
  readonly counts: ReadonlyMap<number, number>;
}

export interface ChunkWrite {
  readonly commands: readonly NewCommandRow[];
  readonly postings: readonly PostingRow[];
  readonly transactions: readonly TransactionRow[];
  /** Reservations the chunk opened (id null, possibly closed already) or closed (loaded, with an id). */
  readonly reservations: readonly ReservationRecord[];
  readonly alerts: AlertChanges;
  /** Absolute balances for the locked user accounts, deltas for the shared ones. */
  readonly balances: readonly BalanceChange[];
  readonly events: readonly BalanceEventRow[];
  /** The partition the chunk came from, kept on the holds it opens (null outside Kafka). */
  readonly partition: number | null;
}

export interface WrittenChunk {
  /** The chunk's one time, taken after its user accounts were locked (postings and history carry it). */
  readonly writtenAt: Date;
  /** The ids of `transactions`, in the order given. */
  readonly transactionIds: number[];
}

const SQL_WRITE_CHUNK = `SELECT written_at, transaction_ids FROM ledger_write_chunk(${Array.from(
  { length: 53 },
  (_, i) => `$${i + 1}`,
).join(', ')})`;

const text = (n: bigint | null | undefined) => (n === null || n === undefined ? null : String(n));

export async function writeChunk(db: pg.PoolClient, chunk: ChunkWrite): Promise<WrittenChunk> {
  const { rows } = await db.query<{ written_at: Date; transaction_ids: string[] }>({
    name: 'ledger_write_chunk',
    text: SQL_WRITE_CHUNK,
    values: [
      ...commandColumns(chunk.commands),
      ...postingColumns(chunk.postings),
      ...transactionColumns(chunk.transactions),
      ...reservationColumns(chunk.reservations),
      ...alertColumns(chunk.alerts),
      ...balanceColumns(chunk.balances),
      chunk.events.length > 0 ? eventRowsJson(chunk.events) : null,
      chunk.partition,
    ],
  });
  const row = rows[0]!;
  return { writtenAt: row.written_at, transactionIds: row.transaction_ids.map(Number) };
}

function commandColumns(rows: readonly NewCommandRow[]): unknown[] {
  return [
    rows.map((r) => r.id),
    rows.map((r) => r.fingerprint),
    rows.map((r) => r.type),
    rows.map((r) => r.userId),
    rows.map((r) => r.status),
    rows.map((r) => r.code),
    rows.map((r) => r.message),
    rows.map((r) => r.partition),
    rows.map((r) => r.offset),
    rows.map((r) => r.principal),
  ];
}

function postingColumns(rows: readonly PostingRow[]): unknown[] {
  return [
    rows.map((r) => r.commandId),
    rows.map((r) => r.debitAccountId),
    rows.map((r) => r.creditAccountId),
    rows.map((r) => String(r.amount)),
    rows.map((r) => text(r.debitBalanceAfter)),
    rows.map((r) => text(r.creditBalanceAfter)),
    rows.map((r) => String(r.versionAfter)),
  ];
}

function transactionColumns(rows: readonly TransactionRow[]): unknown[] {
  return [
    rows.map((r) => r.commandId),
    rows.map((r) => r.userId),
    rows.map((r) => String(r.amount)),
    rows.map((r) => r.type),
    rows.map((r) => r.serviceId),
    rows.map((r) => r.orderId),
    rows.map((r) => r.counterpartyId),
    rows.map((r) => r.comment),
  ];
}

function reservationColumns(changed: readonly ReservationRecord[]): unknown[] {
  const opened = changed.filter((r) => r.id === null);
  const closed = changed.filter((r) => r.id !== null);
  return [
    opened.map((r) => r.userId),
    opened.map((r) => r.serviceId),
    opened.map((r) => r.orderId),
    opened.map((r) => String(r.amount)),
    opened.map((r) => r.status),
    opened.map((r) => String(r.capturedAmount)),
    opened.map((r) => r.reserveCommandId),
    opened.map((r) => r.closeCommandId),
    opened.map((r) => r.expiresInS),
    closed.map((r) => r.id),
    closed.map((r) => r.status),
    closed.map((r) => String(r.capturedAmount)),
    closed.map((r) => r.closeCommandId),
  ];
}

function alertColumns({ upserts, deletes, counts }: AlertChanges): unknown[] {
  return [
    upserts.map((a) => a.id),
    upserts.map((a) => a.userId),
    upserts.map((a) => a.direction),
    upserts.map((a) => String(a.threshold)),
    upserts.map((a) => a.past),
    [...deletes],
    [...counts.keys()],
    [...counts.values()],
  ];
}

/** Users' accounts get their new balance (and version); shared ones a delta, in id order. */
function balanceColumns(changes: readonly BalanceChange[]): unknown[] {
  const users = changes.filter((c) => isBoundedAccount(c.key));
  const shared = changes.filter((c) => !isBoundedAccount(c.key)).sort((a, b) => a.id - b.id);
  return [
    users.map((c) => c.id),
    users.map((c) => String(c.balance)),
    users.map((c) => text(c.version)),
    shared.map((c) => c.id),
    shared.map((c) => String(c.delta)),
  ];
}
