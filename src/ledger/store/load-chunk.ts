/**
 * Everything a chunk needs to decide, in one round trip: a call of `ledger_load_chunk`
 * (sql/functions/ledger_load_chunk.sql), which finds the chunk's commands already decided, locks (and
 * creates) its users' accounts, reads its shared accounts, and loads its orders' latest
 * reservations and its users' alerts. A chunk used to load with four to seven statements.
 */
import type pg from 'pg';
import type { AlertDirection } from '../../commands/schema.ts';
import type { AlertState } from '../alerts.ts';
import { type AccountKey, type AccountKind, accountKey, isBoundedAccount, parseAccountKey } from '../core.ts';
import type { CapturedOrder, ReservationRecord } from '../state.ts';
import { type LoadedAccount, stripeOf } from './accounts.ts';
import type { StoredCommand } from './commands.ts';

export interface OrderKey {
  readonly userId: number;
  readonly serviceId: number;
  readonly orderId: number;
}

export interface ChunkLoad {
  readonly commandIds: readonly string[];
  readonly accounts: Iterable<AccountKey>;
  /** The chunk's partition: the stripe of its external and revenue accounts. */
  readonly stripe: number;
  readonly orders: readonly OrderKey[];
}

export interface LoadedChunk {
  readonly stored: Map<string, StoredCommand>;
  readonly accounts: Map<AccountKey, LoadedAccount>;
  /**
   * The open reservations of the chunk's orders, the reservationKey()s of those whose hold
   * expired, and the orders with captured reservations (their totals).
   */
  readonly reservations: { open: ReservationRecord[]; expired: string[]; captured: CapturedOrder[] };
  readonly alerts: AlertState[];
}

type LoadRow =
  | { what: 'command'; item: StoredCommand }
  | {
      what: 'account';
      item: {
        id: number;
        kind: AccountKind;
        owner_id: number;
        balance: string;
        version: string;
        alert_count: number;
        frozen_reason: string | null;
        chain_hash: string | null;
      };
    }
  | {
      what: 'reservation';
      item: {
        id: number;
        user_id: number;
        service_id: number;
        order_id: number;
        amount: string;
        status: string;
        reserve_command_id: string;
        /** What all of the order's captured reservations captured, and had refunded. */
        order_captured: string;
        order_refunded: string;
      };
    }
  | {
      what: 'alert';
      item: { id: string; user_id: number; direction: AlertDirection; threshold: string; past: boolean };
    };

const SQL_LOAD_CHUNK = 'SELECT what, item FROM ledger_load_chunk($1, $2, $3, $4, $5, $6, $7, $8, $9)';

export async function loadChunk(db: pg.PoolClient | pg.Pool, load: ChunkLoad): Promise<LoadedChunk> {
  const keys = [...new Set(load.accounts)];
  const users = keys.filter(isBoundedAccount).map(parseAccountKey);
  const shared = keys.filter((key) => !isBoundedAccount(key));
  const sharedParsed = shared.map(parseAccountKey);
  const { rows } = await db.query<LoadRow>({
    name: 'ledger_load_chunk',
    text: SQL_LOAD_CHUNK,
    values: [
      load.commandIds,
      users.map((u) => u.kind),
      users.map((u) => u.ownerId),
      sharedParsed.map((s) => s.kind),
      sharedParsed.map((s) => s.ownerId),
      shared.map((key) => stripeOf(key, load.stripe)),
      load.orders.map((o) => o.userId),
      load.orders.map((o) => o.serviceId),
      load.orders.map((o) => o.orderId),
    ],
  });
  return loadedChunk(rows);
}

function loadedChunk(rows: readonly LoadRow[]): LoadedChunk {
  const chunk: LoadedChunk = {
    stored: new Map(),
    accounts: new Map(),
    reservations: { open: [], expired: [], captured: [] },
    alerts: [],
  };
  for (const row of rows) {
    if (row.what === 'command') chunk.stored.set(row.item.id, row.item);
    else if (row.what === 'account') {
      const key = accountKey(row.item.kind, Number(row.item.owner_id));
      chunk.accounts.set(key, {
        id: Number(row.item.id),
        key,
        balance: BigInt(row.item.balance),
        version: BigInt(row.item.version),
        alertCount: row.item.alert_count,
        frozenReason: row.item.frozen_reason,
        chainHash: row.item.chain_hash,
      });
    } else if (row.what === 'reservation') addReservation(chunk.reservations, row.item);
    else
      chunk.alerts.push({
        id: row.item.id,
        userId: Number(row.item.user_id),
        direction: row.item.direction,
        threshold: BigInt(row.item.threshold),
        past: row.item.past,
      });
  }
  return chunk;
}

function addReservation(into: LoadedChunk['reservations'], r: Extract<LoadRow, { what: 'reservation' }>['item']): void {
  if (r.status === 'expired') into.expired.push(`${r.user_id}:${r.service_id}:${r.order_id}`);
  if (BigInt(r.order_captured) > 0n)
    into.captured.push({
      userId: Number(r.user_id),
      serviceId: Number(r.service_id),
      orderId: Number(r.order_id),
      capturedAmount: BigInt(r.order_captured),
      refundedAmount: BigInt(r.order_refunded),
    });
  if (r.status !== 'open') return;
  into.open.push({
    id: Number(r.id),
    userId: Number(r.user_id),
    serviceId: Number(r.service_id),
    orderId: Number(r.order_id),
    amount: BigInt(r.amount),
    // Stored as expires_at when it was opened; deciding never needs it again.
    expiresInS: null,
    status: 'open',
    capturedAmount: 0n,
    reserveCommandId: r.reserve_command_id,
    closeCommandId: null,
  });
}
