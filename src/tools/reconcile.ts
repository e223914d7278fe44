/**
 * Compares two ledgers account by account (balances, users' balance versions and their history
 * chains' heads), the decided
 * commands by outcome, the open reservations, what was refunded of each order, the frozen
 * accounts (with their reasons) and the threshold alerts (with whether each is past its
 * threshold), for checking a database rebuilt by replay against the live one.
 */
import type pg from 'pg';

export const DIFFERENCES_SHOWN_MAX = 100;

export interface Difference {
  readonly what: string;
  readonly key: string;
  readonly a: string;
  readonly b: string;
}

// Summed over stripes (sql/0015_account_stripes.sql): a rebuild must hold the same totals.
const SQL_ACCOUNTS = 'SELECT kind, owner_id, sum(balance)::text AS balance FROM accounts GROUP BY kind, owner_id';
const SQL_OUTCOMES = 'SELECT status, code, count(*) AS n FROM commands GROUP BY status, code';
const SQL_VERSIONS = "SELECT owner_id, version FROM accounts WHERE kind = 'user_available'";
/** The chains' heads: a replay links the same events, so it must end every chain at the same hash. */
const SQL_CHAIN_HEADS = `
  SELECT owner_id, encode(chain_hash, 'hex') AS head FROM accounts
  WHERE kind = 'user_available' AND chain_hash IS NOT NULL`;
const SQL_ALERTS = 'SELECT id, user_id, direction, threshold, past FROM balance_alerts';
const SQL_EXTERNAL_PAYMENTS = 'SELECT command_id, service_id, external_ref, direction, amount FROM external_payments';
const SQL_OPEN_RESERVATIONS = "SELECT user_id, service_id, order_id, amount FROM reservations WHERE status = 'open'";
const SQL_REFUNDED_ORDERS = `
  SELECT user_id, service_id, order_id, sum(refunded_amount)::text AS refunded FROM reservations
  WHERE refunded_amount > 0 GROUP BY user_id, service_id, order_id`;
const SQL_FROZEN =
  "SELECT owner_id, frozen_reason FROM accounts WHERE kind = 'user_available' AND frozen_reason IS NOT NULL";

export async function reconcile(a: pg.Pool, b: pg.Pool): Promise<Difference[]> {
  const differences: Difference[] = [];
  const compare = (what: string, left: Map<string, string>, right: Map<string, string>, missing: string) => {
    for (const key of new Set([...left.keys(), ...right.keys()])) {
      const x = left.get(key) ?? missing;
      const y = right.get(key) ?? missing;
      if (x !== y) differences.push({ what, key, a: x, b: y });
    }
  };
  compare(
    'account balance',
    await keyed(
      a,
      SQL_ACCOUNTS,
      (r) => `${r.kind}:${r.owner_id}`,
      (r) => r.balance,
    ),
    await keyed(
      b,
      SQL_ACCOUNTS,
      (r) => `${r.kind}:${r.owner_id}`,
      (r) => r.balance,
    ),
    '0',
  );
  compare(
    'commands with outcome',
    await keyed(
      a,
      SQL_OUTCOMES,
      (r) => `${r.status}/${r.code}`,
      (r) => r.n,
    ),
    await keyed(
      b,
      SQL_OUTCOMES,
      (r) => `${r.status}/${r.code}`,
      (r) => r.n,
    ),
    '0',
  );
  const order = (r: Record<string, string>) => `${r.user_id}/${r.service_id}/${r.order_id}`;
  compare(
    'open reservation',
    await keyed(a, SQL_OPEN_RESERVATIONS, order, (r) => r.amount),
    await keyed(b, SQL_OPEN_RESERVATIONS, order, (r) => r.amount),
    'none',
  );
  compare(
    'refunded of order',
    await keyed(a, SQL_REFUNDED_ORDERS, order, (r) => r.refunded),
    await keyed(b, SQL_REFUNDED_ORDERS, order, (r) => r.refunded),
    '0',
  );
  const frozen = (db: pg.Pool) =>
    keyed(
      db,
      SQL_FROZEN,
      (r) => `user ${r.owner_id}`,
      (r) => r.frozen_reason,
    );
  compare('frozen account', await frozen(a), await frozen(b), 'not frozen');
  const version = (db: pg.Pool) =>
    keyed(
      db,
      SQL_VERSIONS,
      (r) => `user ${r.owner_id}`,
      (r) => r.version,
    );
  compare('balance version', await version(a), await version(b), '0');
  const head = (db: pg.Pool) =>
    keyed(
      db,
      SQL_CHAIN_HEADS,
      (r) => `user ${r.owner_id}`,
      (r) => r.head,
    );
  compare('history chain head', await head(a), await head(b), 'none');
  const payment = (r: Record<string, string>) =>
    `${r.direction} ${r.amount} service ${r.service_id} ref ${r.external_ref}`;
  compare(
    'external payment',
    await keyed(a, SQL_EXTERNAL_PAYMENTS, (r) => r.command_id!, payment),
    await keyed(b, SQL_EXTERNAL_PAYMENTS, (r) => r.command_id!, payment),
    'none',
  );
  const alert = (r: Record<string, string>) => `user ${r.user_id} ${r.direction} ${r.threshold} past=${r.past}`;
  compare(
    'threshold alert',
    await keyed(a, SQL_ALERTS, (r) => String(r.id), alert),
    await keyed(b, SQL_ALERTS, (r) => String(r.id), alert),
    'none',
  );
  return differences;
}

async function keyed(
  db: pg.Pool,
  sql: string,
  key: (row: Record<string, string>) => string,
  value: (row: Record<string, string>) => string | undefined,
): Promise<Map<string, string>> {
  const { rows } = await db.query<Record<string, string>>(sql);
  return new Map(rows.map((row) => [key(row), String(value(row))]));
}
