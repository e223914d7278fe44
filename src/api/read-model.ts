/**
 * The HTTP read model: balances, history pages, command outcomes and the monthly revenue report,
 * read from the ledger's tables. Writes happen only in the consumer, through the ledger.
 */
import type pg from 'pg';
import {
  balanceView,
  transactionView,
  type BalanceView,
  type CommandReply,
  type TransactionView,
} from '../ledger/outcome.ts';
import { storedReply } from '../ledger/replies.ts';
import { transactionsOfCommands } from '../ledger/store/index.ts';
import { formatMinor } from '../commands/money.ts';
import { SETTLE_ID_PREFIX } from '../commands/schema.ts';
import { monthBounds } from '../ledger/statement.ts';

const SQL_BALANCES_OF_USERS = `
  SELECT owner_id, kind, balance, version, frozen_reason FROM accounts
  WHERE kind IN ('user_available', 'user_reserved', 'user_incoming') AND owner_id = ANY($1::bigint[])`;
// Known: registered, or with history. Not "has an account": accounts are created for every id a
// command names, even a command that is then rejected, and that must not make an id known.
const SQL_USER_EXISTS =
  'SELECT EXISTS (SELECT 1 FROM users WHERE id = $1) OR EXISTS (SELECT 1 FROM transactions WHERE user_id = $1) AS known';

/**
 * A user's balances as the balance endpoint shows them. `spendable` is available plus incoming:
 * money transferred to the user is spendable by every command sent after the transfer was
 * answered (its settle is ahead of them on the user's partition), so a read right after a
 * transfer shows it (read-your-writes). `incoming` says how much of it is still settling.
 */
export type UserBalances = BalanceView & {
  readonly incoming: string;
  readonly spendable: string;
  /** The user's balance version: the sequence of their last balance event (docs/events.md). */
  readonly version: number;
  /** Why the account is frozen (sql/0018_refunds_and_freezes.sql); null when it is not. */
  readonly frozenReason: string | null;
};

export async function balancesOfUsers(db: pg.Pool, userIds: readonly number[]): Promise<Record<string, UserBalances>> {
  const { rows } = await db.query<{
    owner_id: string;
    kind: string;
    balance: string;
    version: string;
    frozen_reason: string | null;
  }>({
    name: 'q_balances',
    text: SQL_BALANCES_OF_USERS,
    values: [userIds],
  });
  const out: Record<string, UserBalances> = {};
  for (const userId of userIds) {
    const row = (kind: string) => rows.find((r) => Number(r.owner_id) === userId && r.kind === kind);
    const of = (kind: string) => BigInt(row(kind)?.balance ?? '0');
    out[String(userId)] = {
      version: Number(row('user_available')?.version ?? '0'),
      frozenReason: row('user_available')?.frozen_reason ?? null,
      ...balanceView(of('user_available'), of('user_reserved')),
      incoming: formatMinor(of('user_incoming')),
      spendable: formatMinor(of('user_available') + of('user_incoming')),
    };
  }
  return out;
}

/** Registered, or with history. */
export async function isKnownUser(db: pg.Pool, userId: number): Promise<boolean> {
  const known = await db.query<{ known: boolean }>({ name: 'q_user_known', text: SQL_USER_EXISTS, values: [userId] });
  return known.rows[0]?.known === true;
}

export interface AlertView {
  readonly alert_id: string;
  readonly direction: 'below' | 'above';
  readonly threshold: string;
  /** Whether the available balance is past the threshold now: the alert fires again only after it comes back. */
  readonly past: boolean;
}

/** A user's threshold alerts, by id; bounded by ALERTS_PER_USER_MAX. */
export async function alertsOfUser(db: pg.Pool, userId: number): Promise<AlertView[]> {
  const { rows } = await db.query<{ id: string; direction: 'below' | 'above'; threshold: string; past: boolean }>({
    name: 'api_alerts_of_user',
    text: 'SELECT id, direction, threshold, past FROM balance_alerts WHERE user_id = $1 ORDER BY id COLLATE "C"',
    values: [userId],
  });
  return rows.map((r) => ({
    alert_id: r.id,
    direction: r.direction,
    threshold: formatMinor(BigInt(r.threshold)),
    past: r.past,
  }));
}

/** The balances of a known user; null for an unknown id. */
export async function balanceOfUser(db: pg.Pool, userId: number): Promise<UserBalances | null> {
  if (!(await isKnownUser(db, userId))) return null;
  return (await balancesOfUsers(db, [userId]))[String(userId)]!;
}

// Balances at an instant (sql/0006_balances_at.sql) take two queries. The first finds the
// user's accounts and checks the instant against the database's clock (the one that stamps
// postings). The second gets the ids as values, not as a join: the planner then estimates each
// account's own number of postings, where for a joined id it assumes an average skewed by the
// busiest accounts and chose a sequential scan of all postings to sum a few hundred.
const SQL_ACCOUNTS_AT = `
  SELECT $2::timestamptz > clock_timestamp() AS future,
         to_char($2::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at,
         (SELECT id FROM accounts WHERE kind = 'user_available' AND owner_id = $1) AS available_id,
         (SELECT id FROM accounts WHERE kind = 'user_reserved' AND owner_id = $1) AS reserved_id,
         (SELECT id FROM accounts WHERE kind = 'user_incoming' AND owner_id = $1) AS incoming_id`;
// Available and reserved: the balance recorded with the account's last posting at (or before)
// the instant: one probe of each side's index. Incoming: the sum of its postings up to then.
// The version: the larger of the versions on those two last postings (sql/0011_version_at.sql).
// `upTo` is '<=' for "at the instant" and '<' for "before it" (a statement's opening balance).
function balancesSql(upTo: '<=' | '<'): string {
  const lastPosting = (account: string) => `
  LEFT JOIN LATERAL (
    (SELECT created_at, id, debit_balance_after AS balance_after, version_after FROM postings
     WHERE debit_account_id = ${account} AND created_at ${upTo} $4::timestamptz ORDER BY created_at DESC, id DESC LIMIT 1)
    UNION ALL
    (SELECT created_at, id, credit_balance_after, version_after FROM postings
     WHERE credit_account_id = ${account} AND created_at ${upTo} $4::timestamptz ORDER BY created_at DESC, id DESC LIMIT 1)
    ORDER BY created_at DESC, id DESC LIMIT 1) AS`;
  return `
  SELECT coalesce(av.balance_after, 0) AS available,
         coalesce(rs.balance_after, 0) AS reserved,
         coalesce((SELECT sum(amount) FROM postings WHERE credit_account_id = $3::bigint AND created_at ${upTo} $4::timestamptz), 0)
       - coalesce((SELECT sum(amount) FROM postings WHERE debit_account_id = $3::bigint AND created_at ${upTo} $4::timestamptz), 0)
         AS incoming,
         CASE WHEN av.id IS NULL AND rs.id IS NULL THEN 0 ELSE greatest(av.version_after, rs.version_after) END AS version
  FROM (SELECT 1) AS one
  ${lastPosting('$1::bigint')} av ON true
  ${lastPosting('$2::bigint')} rs ON true`;
}
const SQL_BALANCES_AT = balancesSql('<=');
const SQL_BALANCES_BEFORE = balancesSql('<');

/** The ids of a user's three accounts; null for one not created yet. */
export interface UserAccountIds {
  readonly available_id: string | null;
  readonly reserved_id: string | null;
  readonly incoming_id: string | null;
}

/** A user's balances, in minor units, at `instant` (inclusive) or just before it. */
export async function accountBalancesAt(
  db: pg.Pool,
  accounts: UserAccountIds,
  instant: string,
  inclusive: boolean,
): Promise<{ available: bigint; reserved: bigint; incoming: bigint; version: bigint | null }> {
  const { rows } = await db.query<{ available: string; reserved: string; incoming: string; version: string | null }>({
    name: inclusive ? 'q_balances_at' : 'q_balances_before',
    text: inclusive ? SQL_BALANCES_AT : SQL_BALANCES_BEFORE,
    values: [accounts.available_id, accounts.reserved_id, accounts.incoming_id, instant],
  });
  const row = rows[0]!;
  return {
    available: BigInt(row.available),
    reserved: BigInt(row.reserved),
    incoming: BigInt(row.incoming),
    version: row.version === null ? null : BigInt(row.version),
  };
}

/**
 * A user's balances at an instant, as the balance endpoint shows them, with the instant in UTC;
 * `version` is null when the last posting before it predates balance events (sql/0011).
 */
export type UserBalancesAt = Omit<UserBalances, 'version' | 'frozenReason'> & {
  readonly at: string;
  readonly version: number | null;
};

/**
 * The balances of a known user as of `at` (an ISO 8601 instant with an offset): every posting
 * stamped at or before it counts. 'unknown' for an unknown id, 'future' for an instant later
 * than the database's clock (its answer could still change).
 */
export async function balanceOfUserAt(
  db: pg.Pool,
  userId: number,
  at: string,
): Promise<UserBalancesAt | 'unknown' | 'future'> {
  if (!(await isKnownUser(db, userId))) return 'unknown';
  const accounts = (
    await db.query<UserAccountIds & { future: boolean; at: string }>({
      name: 'q_accounts_at',
      text: SQL_ACCOUNTS_AT,
      values: [userId, at],
    })
  ).rows[0]!;
  if (accounts.future) return 'future';
  const { available, reserved, incoming, version } = await accountBalancesAt(db, accounts, at, true);
  return {
    ...balanceView(available, reserved),
    incoming: formatMinor(incoming),
    spendable: formatMinor(available + incoming),
    at: accounts.at,
    version: version === null ? null : Number(version),
  };
}

// A transfer's settles are published, and acknowledged, before its reply. A poll reads the
// committed row, which is written before that, so it also asks whether the settles are known to
// be in the log: the consumer's watermark of acknowledged settles covers the transfer's offset,
// or every leg's settle (one per recipient: `~settle:<id>`, or `~settle:<id>#<recipient>` for a
// split payment) has been applied. Until then a credit is in flight.
const SQL_COMMAND = `
  SELECT id, fingerprint, type, user_id, status, code, message, principal,
         (type = 'transfer' AND status = 'applied'
          AND NOT EXISTS (SELECT 1 FROM settles_published p
                          WHERE p.source_partition = c.source_partition AND p.published_through >= c.source_offset)
          AND EXISTS (SELECT 1 FROM transactions t
                      WHERE t.command_id = c.id AND t.transaction_type = 'transfer_in'
                        AND NOT EXISTS (SELECT 1 FROM commands s
                                        WHERE s.id IN ('${SETTLE_ID_PREFIX}' || c.id, '${SETTLE_ID_PREFIX}' || c.id || '#' || t.user_id))))
           AS credit_in_flight
  FROM commands c WHERE id = $1`;

export interface StoredOutcome {
  readonly fingerprint: string;
  readonly userId: number;
  /** Who sent it (commands.principal). */
  readonly principal: string;
  readonly reply: CommandReply;
  /**
   * An applied transfer whose settle has not been applied yet: perhaps not even published, so a
   * command for the recipient sent now might be decided before the credit. Not final to a caller.
   */
  readonly creditInFlight: boolean;
}

/** The decided outcome of a command, as a reply with `duplicate: true`; null if not decided (yet). */
export async function loadOutcome(db: pg.Pool, commandId: string): Promise<StoredOutcome | null> {
  const { rows } = await db.query<{
    id: string;
    fingerprint: string;
    user_id: string;
    status: 'applied' | 'rejected';
    code: string;
    message: string;
    principal: string;
    credit_in_flight: boolean;
  }>({ name: 'q_command', text: SQL_COMMAND, values: [commandId] });
  const row = rows[0];
  if (!row) return null;
  const transactions = (await transactionsOfCommands(db, [commandId])).map(transactionView);
  return {
    fingerprint: row.fingerprint,
    userId: Number(row.user_id),
    principal: row.principal,
    creditInFlight: row.credit_in_flight,
    reply: storedReply(row, transactions, await replyBalances(db, Number(row.user_id))),
  };
}

/** The balances a reply reports: the command's own user's, without incoming (as the consumer replies). */
async function replyBalances(db: pg.Pool, userId: number): Promise<Record<string, BalanceView>> {
  const { available, reserved } = (await balancesOfUsers(db, [userId]))[String(userId)]!;
  return { [String(userId)]: { available, reserved } };
}

export type HistorySort = 'date' | 'amount';

export interface HistoryPage {
  readonly items: TransactionView[];
  readonly next_cursor: string | null;
}

/** A cursor is the sort value and id of the last row shown, opaque to clients. */
export function encodeCursor(value: string, id: number): string {
  return Buffer.from(JSON.stringify([value, id])).toString('base64url');
}

export function decodeCursor(cursor: string): { value: string; id: number } | null {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      typeof parsed[0] === 'string' &&
      Number.isSafeInteger(parsed[1])
    ) {
      return { value: parsed[0], id: parsed[1] as number };
    }
  } catch {
    // fall through: any undecodable cursor is simply invalid
  }
  return null;
}

export const HISTORY_COLUMNS = `id, command_id, user_id, amount, transaction_type, service_id, order_id, counterparty_id, comment, created_at,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS date_key`;

/** Keyset pagination over one of two indexes: (user_id, created_at, id) or (user_id, amount, id). */
function historySql(sort: HistorySort, order: 'asc' | 'desc', after: boolean): string {
  const column = sort === 'date' ? 'created_at' : 'amount';
  const cast = sort === 'date' ? 'timestamptz' : 'bigint';
  const comparison = order === 'asc' ? '>' : '<';
  const keyset = after ? `AND (${column}, id) ${comparison} ($3::${cast}, $4::bigint)` : '';
  return `SELECT ${HISTORY_COLUMNS} FROM transactions WHERE user_id = $1 ${keyset}
          ORDER BY ${column} ${order}, id ${order} LIMIT $2`;
}

export async function historyPage(
  db: pg.Pool,
  query: {
    userId: number;
    sort: HistorySort;
    order: 'asc' | 'desc';
    limit: number;
    after: { value: string; id: number } | null;
  },
): Promise<HistoryPage> {
  const values: unknown[] = [query.userId, query.limit + 1];
  if (query.after) values.push(query.after.value, query.after.id);
  const { rows } = await db.query(historySql(query.sort, query.order, query.after !== null), values);
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  const nextCursor =
    rows.length > query.limit && last
      ? encodeCursor(query.sort === 'date' ? last.date_key : String(last.amount), Number(last.id))
      : null;
  return { items: page.map(transactionView), next_cursor: nextCursor };
}

const SQL_REVENUE_REPORT = `
  SELECT r.service_id, coalesce(s.name, 'service ' || r.service_id) AS service_name, sum(r.amount) AS revenue,
         coalesce(sum(r.amount) FILTER (WHERE r.amount > 0), 0) AS captured,
         coalesce(-sum(r.amount) FILTER (WHERE r.amount < 0), 0) AS refunded
  FROM revenue_entries r LEFT JOIN services s ON s.id = r.service_id
  WHERE r.created_at >= make_timestamptz($1, $2, 1, 0, 0, 0, $5) AND r.created_at < make_timestamptz($3, $4, 1, 0, 0, 0, $5)
  GROUP BY r.service_id, s.name
  ORDER BY r.service_id`;

export interface RevenueLine {
  readonly service_id: number;
  readonly service_name: string;
  /** Net: captured minus refunded in the month. */
  readonly revenueMinor: bigint;
  readonly capturedMinor: bigint;
  /** Refunds made in the month, whenever their orders were captured. */
  readonly refundedMinor: bigint;
}

/**
 * Net revenue (captures less refunds, each in the month it happened) per service in a calendar month (YYYY-MM) that begins at midnight in
 * `timeZone` (REPORT_TIME_ZONE); PostgreSQL computes the boundaries, daylight saving included.
 */
export async function revenueReport(db: pg.Pool, month: string, timeZone: string): Promise<RevenueLine[]> {
  const { from, to } = monthBounds(month);
  const { rows } = await db.query<{
    service_id: string;
    service_name: string;
    revenue: string;
    captured: string;
    refunded: string;
  }>(SQL_REVENUE_REPORT, [...from, ...to, timeZone]);
  return rows.map((r) => ({
    service_id: Number(r.service_id),
    service_name: r.service_name,
    revenueMinor: BigInt(r.revenue),
    capturedMinor: BigInt(r.captured),
    refundedMinor: BigInt(r.refunded),
  }));
}
