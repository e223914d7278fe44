/**
 * Everything a decided chunk writes, in one statement: a call of `ledger_commit_chunk`
 * (sql/functions/ledger_commit_chunk.sql). On a pool it is its own transaction, the chunk's one
 * round trip; on a client inside BEGIN it is the write of the fallback path. It refuses the
 * whole write (and rolls it back) when the state the chunk was decided on is not the database's:
 * `ChunkRefusedError`, with the reason.
 */
import type pg from 'pg';
import { PG_ERROR, pgErrorCode } from '../../db/errors.ts';
import type { AlertState } from '../alerts.ts';
import type { AccountKey, RefundChange } from '../core.ts';
import type { FreezeRecord, ReservationRecord } from '../state.ts';
import type { NewCommandRow } from './commands.ts';
import { type BalanceEventRow, eventRowsJson } from './events.ts';

type Queryable = pg.PoolClient | pg.Pool;

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

/** A deposit or withdrawal that named its service, as `external_payments` keeps it. */
export interface ExternalPaymentRow {
  readonly commandId: string;
  readonly serviceId: number;
  readonly externalRef: string | null;
  readonly userId: number;
  readonly direction: 'deposit' | 'withdraw';
  readonly amount: bigint;
  /** ISO 8601: the command message's Kafka timestamp. */
  readonly occurredAt: string;
}

/**
 * A user account the chunk decided on: what the decision started from (the write is refused if
 * the row holds anything else) and what it leaves. `version` only for available accounts.
 */
export interface UserAccountWrite {
  readonly id: number;
  readonly key: AccountKey;
  readonly expectedBalance: bigint;
  readonly expectedVersion: bigint | null;
  readonly balance: bigint;
  readonly version: bigint | null;
  /** The user's new chain head (ledger/chain.ts), as hex, where the chunk linked events; else null. */
  readonly chainHash: string | null;
}

export interface AlertChanges {
  readonly upserts: readonly AlertState[];
  readonly deletes: readonly string[];
  /** New alert counts, by the user's available account id. */
  readonly counts: ReadonlyMap<number, number>;
}

export interface FreezeWrite {
  /** The final state of each changed account: its available account's id and its reason (null: unfrozen). */
  readonly accounts: ReadonlyArray<{ readonly id: number; readonly reason: string | null }>;
  /** Every change, in order, with who made it. */
  readonly changes: ReadonlyArray<FreezeRecord & { readonly principal: string }>;
}

/** The partition epoch the writer holds (claim_partition.sql); null writes unfenced (replay, tools). */
export interface Fence {
  readonly topic: string;
  readonly partition: number;
  readonly epoch: bigint;
}

export interface ChunkCommit {
  readonly fence: Fence | null;
  readonly commands: readonly NewCommandRow[];
  readonly postings: readonly PostingRow[];
  readonly transactions: readonly TransactionRow[];
  /** Reservations the chunk opened (id null, possibly closed already) or closed (loaded, with an id). */
  readonly reservations: readonly ReservationRecord[];
  readonly refunds: readonly RefundChange[];
  readonly alerts: AlertChanges;
  readonly freezes: FreezeWrite;
  /** Deposits and withdrawals that named their service (sql/0028). */
  readonly externalPayments: readonly ExternalPaymentRow[];
  readonly userAccounts: readonly UserAccountWrite[];
  /** Deltas of shared accounts (incoming, external and revenue stripes), by id. */
  readonly sharedDeltas: ReadonlyMap<number, bigint>;
  readonly events: readonly BalanceEventRow[];
  /** The partition the chunk came from, kept on the holds it opens (null outside Kafka). */
  readonly partition: number | null;
  /** Users whose balances the replies report without the chunk deciding on them (recipients). */
  readonly reportUserIds: readonly number[];
}

export interface CommittedChunk {
  /** The chunk's one time, taken once its user accounts were locked (postings and history carry it). */
  readonly writtenAt: Date;
  /** The ids of `transactions`, in the order given. */
  readonly transactionIds: number[];
  /** The ids of the reservations opened, by the command that opened each. */
  readonly openedReservationIds: Map<string, number>;
  /** The reported users' balances, by user id and account kind. */
  readonly reported: ReadonlyArray<{ userId: number; kind: string; balance: bigint }>;
}

export type RefusalReason = 'partition_lost' | 'duplicate' | 'stale_state';

/** What a refusal names: the partitions lost, the command decided already, the accounts that moved. */
export interface RefusalDetail {
  readonly partitions?: readonly number[];
  readonly commandId?: string;
  readonly accountIds?: readonly number[];
  /** The user whose external reference was written since (the chunks with their accounts). */
  readonly userId?: number;
}

/** The database holds another state than the chunk was decided on; nothing was written. */
export class ChunkRefusedError extends Error {
  override readonly name = 'ChunkRefusedError';
  /** A lost partition is not for this consumer to retry; the others are redecided at once. */
  readonly failureKind = 'transient';
  constructor(
    readonly reason: RefusalReason,
    options: { cause: unknown },
    readonly detail: RefusalDetail = {},
  ) {
    super(`the chunk's write was refused: ${reason}`, options);
  }

  /** Whether the refusal is about `chunk` (one of several written together); true when it names nothing. */
  concerns(chunk: ChunkCommit): boolean {
    const { partitions, commandId, accountIds, userId } = this.detail;
    if (partitions) return chunk.fence !== null && partitions.includes(chunk.fence.partition);
    if (userId !== undefined) return chunk.externalPayments.some((p) => p.userId === userId);
    if (commandId !== undefined) return chunk.commands.some((c) => c.id === commandId);
    if (accountIds) return chunk.userAccounts.some((a) => accountIds.includes(a.id));
    return true;
  }
}

const REFUSALS: Readonly<Record<string, RefusalReason>> = {
  LF001: 'partition_lost',
  LS001: 'stale_state',
};

/** Why the write was refused, and about what, if it was: a command decided already fails on commands_pkey. */
function refusalOf(error: unknown): ChunkRefusedError | null {
  const { code, constraint, detail } = error as { code?: string; constraint?: string; detail?: string };
  // Another partition wrote the same service's external reference since this chunk read it:
  // decided again, the chunk reads it and rejects the command (external_ref_reused).
  if (code === PG_ERROR.UNIQUE_VIOLATION && constraint === 'external_payments_ref') {
    const userId = /^Key \(service_id, user_id, external_ref\)=\(\d+, (\d+), /.exec(detail ?? '')?.[1];
    return new ChunkRefusedError(
      'stale_state',
      { cause: error },
      userId === undefined ? {} : { userId: Number(userId) },
    );
  }
  if (code === PG_ERROR.UNIQUE_VIOLATION && constraint === 'commands_pkey') {
    const commandId = /^Key \(id\)=\((.*)\) already exists\.$/s.exec(detail ?? '')?.[1];
    return new ChunkRefusedError('duplicate', { cause: error }, commandId === undefined ? {} : { commandId });
  }
  const reason = REFUSALS[pgErrorCode(error) ?? ''];
  if (!reason) return null;
  const listed = detail ? (JSON.parse(detail) as number[]) : undefined;
  const named =
    listed === undefined ? {} : reason === 'partition_lost' ? { partitions: listed } : { accountIds: listed };
  return new ChunkRefusedError(reason, { cause: error }, named);
}

const SQL_COMMIT_CHUNK = `SELECT written_at, transaction_ids, opened_reservations, reported
  FROM ledger_commit_chunk(${Array.from({ length: 17 }, (_, i) => `$${i + 1}`).join(', ')})`;

/** Writes one chunk (see commitChunks). */
export async function commitChunk(db: Queryable, chunk: ChunkCommit): Promise<CommittedChunk> {
  return (await commitChunks(db, [chunk]))[0]!;
}

/**
 * Writes several chunks (of different partitions, or one) in one statement, each fenced by its
 * own epoch, and returns what each got. Throws ChunkRefusedError, naming what it is about, if
 * any of them is refused: then nothing of any of them was written.
 */
export async function commitChunks(db: Queryable, chunks: readonly ChunkCommit[]): Promise<CommittedChunk[]> {
  type Row = {
    written_at: Date;
    transaction_ids: string[];
    opened_reservations: Array<{ id: number; reserve_command_id: string }> | null;
    reported: Array<{ user_id: number; kind: string; balance: string }> | null;
  };
  let rows: Row[];
  try {
    ({ rows } = await db.query<Row>({ name: 'ledger_commit_chunk', text: SQL_COMMIT_CHUNK, values: values(chunks) }));
  } catch (error) {
    throw refusalOf(error) ?? error;
  }
  const row = rows[0]!;
  const transactionIds = row.transaction_ids.map(Number);
  const opened = new Map((row.opened_reservations ?? []).map((r) => [r.reserve_command_id, Number(r.id)]));
  const reported = (row.reported ?? []).map((r) => ({
    userId: Number(r.user_id),
    kind: r.kind,
    balance: BigInt(r.balance),
  }));
  let next = 0;
  return chunks.map((chunk) => {
    const ids = transactionIds.slice(next, next + chunk.transactions.length);
    next += chunk.transactions.length;
    const reserves = new Set(chunk.reservations.filter((r) => r.id === null).map((r) => r.reserveCommandId));
    return {
      writtenAt: row.written_at,
      transactionIds: ids,
      openedReservationIds: new Map([...opened].filter(([commandId]) => reserves.has(commandId))),
      reported: reported.filter((r) => chunk.reportUserIds.includes(r.userId)),
    };
  });
}

const text = (n: bigint | null | undefined) => (n === null || n === undefined ? null : String(n));

/** The statement's parameters for `chunks` written together: their rows, one json value per table. */
function values(chunks: readonly ChunkCommit[]): unknown[] {
  const all = <T>(pick: (chunk: ChunkCommit) => readonly T[]) => chunks.flatMap(pick);
  const opened = chunks.flatMap((c) =>
    c.reservations.filter((r) => r.id === null).map((r) => ({ ...openedJson(r), source_partition: c.partition })),
  );
  const deltas = new Map<number, bigint>();
  for (const chunk of chunks)
    for (const [id, delta] of chunk.sharedDeltas) deltas.set(id, (deltas.get(id) ?? 0n) + delta);
  const events = all((c) => c.events);
  const alertUpserts = all((c) => c.alerts.upserts).map((a) => ({
    ...a,
    threshold: String(a.threshold),
    user_id: a.userId,
  }));
  return [
    JSON.stringify(chunks.flatMap((c) => (c.fence ? [{ ...c.fence, epoch: String(c.fence.epoch) }] : []))),
    JSON.stringify(all((c) => c.commands).map(commandJson)),
    JSON.stringify(all((c) => c.postings).map(postingJson)),
    JSON.stringify(all((c) => c.transactions).map(transactionJson)),
    JSON.stringify(opened),
    JSON.stringify(all((c) => c.reservations.filter((r) => r.id !== null)).map(closedJson)),
    JSON.stringify(alertUpserts),
    all((c) => c.alerts.deletes),
    JSON.stringify(all((c) => [...c.alerts.counts]).map(([id, count]) => ({ id, count }))),
    JSON.stringify([...all((c) => c.userAccounts)].sort((a, b) => a.id - b.id).map(userAccountJson)),
    JSON.stringify([...deltas].sort(([a], [b]) => a - b).map(([id, delta]) => ({ id, delta: String(delta) }))),
    JSON.stringify(all((c) => c.refunds).map(refundJson)),
    JSON.stringify(all((c) => c.freezes.accounts)),
    JSON.stringify(all((c) => c.freezes.changes).map(freezeJson)),
    events.length > 0 ? eventRowsJson(events) : '[]',
    [...new Set(all((c) => c.reportUserIds))],
    JSON.stringify(all((c) => c.externalPayments).map(externalPaymentJson)),
  ];
}

function externalPaymentJson(p: ExternalPaymentRow) {
  return {
    command_id: p.commandId,
    service_id: p.serviceId,
    external_ref: p.externalRef,
    user_id: p.userId,
    direction: p.direction,
    amount: String(p.amount),
    occurred_at: p.occurredAt,
  };
}

function commandJson(r: NewCommandRow) {
  return {
    id: r.id,
    fingerprint: r.fingerprint,
    type: r.type,
    user_id: r.userId,
    status: r.status,
    code: r.code,
    message: r.message,
    partition: r.partition,
    offset: r.offset,
    principal: r.principal,
  };
}

function postingJson(r: PostingRow) {
  return {
    command_id: r.commandId,
    debit_account_id: r.debitAccountId,
    credit_account_id: r.creditAccountId,
    amount: String(r.amount),
    debit_balance_after: text(r.debitBalanceAfter),
    credit_balance_after: text(r.creditBalanceAfter),
    version_after: String(r.versionAfter),
  };
}

function transactionJson(r: TransactionRow) {
  return {
    command_id: r.commandId,
    user_id: r.userId,
    amount: String(r.amount),
    type: r.type,
    service_id: r.serviceId,
    order_id: r.orderId,
    counterparty_id: r.counterpartyId,
    comment: r.comment,
  };
}

function openedJson(r: ReservationRecord) {
  return {
    user_id: r.userId,
    service_id: r.serviceId,
    order_id: r.orderId,
    amount: String(r.amount),
    status: r.status,
    captured_amount: String(r.capturedAmount),
    reserve_command_id: r.reserveCommandId,
    close_command_id: r.closeCommandId,
    expires_in_s: r.expiresInS,
  };
}

function closedJson(r: ReservationRecord) {
  return { id: r.id, status: r.status, captured_amount: String(r.capturedAmount), close_command_id: r.closeCommandId };
}

function userAccountJson(a: UserAccountWrite) {
  return {
    id: a.id,
    expected_balance: String(a.expectedBalance),
    expected_version: text(a.expectedVersion),
    balance: String(a.balance),
    version: text(a.version),
    chain_hash: a.chainHash,
  };
}

function refundJson(r: RefundChange) {
  return { user_id: r.userId, service_id: r.serviceId, order_id: r.orderId, amount: String(r.amount) };
}

function freezeJson(c: FreezeRecord & { readonly principal: string }) {
  return { user_id: c.userId, command_id: c.commandId, frozen: c.frozen, reason: c.reason, principal: c.principal };
}
