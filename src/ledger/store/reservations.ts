/** Reservations: the latest one of each order a chunk names. */
import type pg from 'pg';
import type { ReservationRecord } from '../state.ts';

// The latest reservation of each order, one probe of reservations_by_order each. An open one is
// always the latest (a reserve is refused while one is open); a closed one matters only if an
// expire closed it: a capture or release of that order is then answered reservation_expired
// rather than reservation_not_found.
const SQL_LATEST_RESERVATIONS = `
  SELECT r.id, k.user_id, k.service_id, k.order_id, r.amount, r.status, r.reserve_command_id
  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS k(user_id, service_id, order_id)
  CROSS JOIN LATERAL (
    SELECT id, amount, status, reserve_command_id FROM reservations r
    WHERE r.user_id = k.user_id AND r.service_id = k.service_id AND r.order_id = k.order_id
    ORDER BY r.id DESC LIMIT 1
  ) r`;

export interface OrderKey {
  readonly userId: number;
  readonly serviceId: number;
  readonly orderId: number;
}

/** The open reservations of the given orders, and the reservationKey()s of those whose hold expired. */
export async function loadOrderReservations(
  db: pg.PoolClient,
  orders: readonly OrderKey[],
): Promise<{ open: ReservationRecord[]; expired: string[] }> {
  if (orders.length === 0) return { open: [], expired: [] };
  const values = [orders.map((o) => o.userId), orders.map((o) => o.serviceId), orders.map((o) => o.orderId)];
  const { rows } = await db.query<{
    id: string;
    user_id: string;
    service_id: string;
    order_id: string;
    amount: string;
    status: string;
    reserve_command_id: string;
  }>({ name: 'ledger_latest_reservations', text: SQL_LATEST_RESERVATIONS, values });
  const open = rows
    .filter((row) => row.status === 'open')
    .map(
      (row): ReservationRecord => ({
        id: Number(row.id),
        userId: Number(row.user_id),
        serviceId: Number(row.service_id),
        orderId: Number(row.order_id),
        amount: BigInt(row.amount),
        // Stored as expires_at when it was opened; deciding never needs it again.
        expiresInS: null,
        status: 'open',
        capturedAmount: 0n,
        reserveCommandId: row.reserve_command_id,
        closeCommandId: null,
      }),
    );
  const expired = rows
    .filter((row) => row.status === 'expired')
    .map((row) => `${row.user_id}:${row.service_id}:${row.order_id}`);
  return { open, expired };
}
