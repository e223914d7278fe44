/** Threshold alerts: loading the ones of users who have some. */
import type pg from 'pg';
import type { AlertDirection } from '../../commands/schema.ts';
import type { AlertState } from '../alerts.ts';

const SQL_LOAD_ALERTS = `
  SELECT id, user_id, direction, threshold, past FROM balance_alerts
  WHERE user_id = ANY($1::bigint[])`;

/** The threshold alerts of users whose (locked) available account says they have some. */
export async function loadAlerts(db: pg.PoolClient, userIds: readonly number[]): Promise<AlertState[]> {
  if (userIds.length === 0) return [];
  const { rows } = await db.query<{
    id: string;
    user_id: string;
    direction: AlertDirection;
    threshold: string;
    past: boolean;
  }>({ name: 'ledger_load_alerts', text: SQL_LOAD_ALERTS, values: [userIds] });
  return rows.map((r) => ({
    id: r.id,
    userId: Number(r.user_id),
    direction: r.direction,
    threshold: BigInt(r.threshold),
    past: r.past,
  }));
}
