/**
 * The read model of monthly statements (GET /api/statements/): a month's opening balance, its
 * history rows in time order with the running balance after each, and its closing balance.
 *
 * The opening and closing balances are read from the postings (the balances recorded with
 * them, as for balances at an instant), and the running balances are derived from the history
 * rows (src/ledger/statement.ts); they are two independent records of the same money, and a
 * page's last running balance equals the closing balance once the month is over.
 */
import type pg from 'pg';
import { formatMinor } from '../commands/money.ts';
import type { TransactionType } from '../commands/result-codes.ts';
import { transactionView, type TransactionView } from '../ledger/outcome.ts';
import {
  addBalances,
  monthBounds,
  NO_BALANCES,
  rowEffect,
  runningBalances,
  type StatementBalances,
} from '../ledger/statement.ts';
import { accountBalancesAt, encodeCursor, HISTORY_COLUMNS, isKnownUser, type UserAccountIds } from './read-model.ts';

const UTC_MICROS = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

// The month's first instants in the report's time zone, computed by PostgreSQL (whose clock
// stamps postings), and the user's accounts.
const SQL_STATEMENT_BOUNDS = `
  SELECT to_char(b.from_at AT TIME ZONE 'UTC', ${UTC_MICROS}) AS from_at,
         to_char(b.to_at AT TIME ZONE 'UTC', ${UTC_MICROS}) AS to_at,
         b.from_at > clock_timestamp() AS future,
         b.to_at <= clock_timestamp() AS complete,
         (SELECT id FROM accounts WHERE kind = 'user_available' AND owner_id = $1) AS available_id,
         (SELECT id FROM accounts WHERE kind = 'user_reserved' AND owner_id = $1) AS reserved_id,
         (SELECT id FROM accounts WHERE kind = 'user_incoming' AND owner_id = $1) AS incoming_id
  FROM (SELECT make_timestamptz($2, $3, 1, 0, 0, 0, $6) AS from_at, make_timestamptz($4, $5, 1, 0, 0, 0, $6) AS to_at) b`;

/** One page of the month's rows, after the cursor's row if any, in time order. */
const SQL_STATEMENT_ROWS = (after: boolean) => `
  SELECT ${HISTORY_COLUMNS} FROM transactions
  WHERE user_id = $1 AND created_at >= $2::timestamptz AND created_at < $3::timestamptz
    ${after ? 'AND (created_at, id) > ($5::timestamptz, $6::bigint)' : ''}
  ORDER BY created_at, id LIMIT $4`;

/** The month's rows up to the cursor's, summed per type: the running balance a later page starts from. */
const SQL_STATEMENT_ROWS_BEFORE = `
  SELECT transaction_type, sum(amount) AS total FROM transactions
  WHERE user_id = $1 AND created_at >= $2::timestamptz AND (created_at, id) <= ($3::timestamptz, $4::bigint)
  GROUP BY transaction_type`;

export interface StatementBalancesView {
  /** Available plus incoming, as the balance endpoint's `amount`. */
  readonly amount: string;
  readonly reserved: string;
}

export type StatementRow = TransactionView & { readonly balance_after: StatementBalancesView };

export interface Statement {
  /** The month's first instant and the next month's, in UTC with microseconds. */
  readonly from: string;
  readonly to: string;
  /** False while the month is still running: the closing balance is then the balance so far. */
  readonly complete: boolean;
  readonly opening: StatementBalancesView & { readonly incoming: string };
  readonly closing: StatementBalancesView & { readonly incoming: string };
  readonly rows: StatementRow[];
  readonly nextCursor: string | null;
}

export interface StatementQuery {
  readonly userId: number;
  /** YYYY-MM. */
  readonly month: string;
  /** An IANA time zone name PostgreSQL knows (REPORT_TIME_ZONE). */
  readonly timeZone: string;
  readonly limit: number;
  /** The last row of the previous page (its UTC time with microseconds, and id). */
  readonly after: { value: string; id: number } | null;
}

/** A user's statement for a month; 'unknown' for an unknown user, 'future' for a month not begun. */
export async function statementOfUser(db: pg.Pool, query: StatementQuery): Promise<Statement | 'unknown' | 'future'> {
  if (!(await isKnownUser(db, query.userId))) return 'unknown';
  const { from, to } = monthBounds(query.month);
  const bounds = (
    await db.query<UserAccountIds & { from_at: string; to_at: string; future: boolean; complete: boolean }>({
      name: 'q_statement_bounds',
      text: SQL_STATEMENT_BOUNDS,
      values: [query.userId, ...from, ...to, query.timeZone],
    })
  ).rows[0]!;
  if (bounds.future) return 'future';
  const [opening, closing] = await Promise.all([
    accountBalancesAt(db, bounds, bounds.from_at, false),
    accountBalancesAt(db, bounds, bounds.to_at, false),
  ]);
  const page = await rowsPage(db, query, bounds.from_at, bounds.to_at);
  const start = addBalances(balancesOf(opening), await rowsBefore(db, query, bounds.from_at));
  const after = runningBalances(
    start,
    page.rows.map((r) => ({ type: r.transaction_type as TransactionType, amount: BigInt(r.amount) })),
  );
  return {
    from: bounds.from_at,
    to: bounds.to_at,
    complete: bounds.complete,
    opening: balancesView(opening),
    closing: balancesView(closing),
    rows: page.rows.map((row, i) => ({ ...transactionView(row), balance_after: statementView(after[i]!) })),
    nextCursor: page.nextCursor,
  };
}

interface HistoryRow {
  id: string;
  command_id: string;
  user_id: string;
  amount: string;
  transaction_type: string;
  service_id: string | null;
  order_id: string | null;
  counterparty_id: string | null;
  comment: string | null;
  created_at: Date;
  date_key: string;
}

async function rowsPage(db: pg.Pool, query: StatementQuery, fromAt: string, toAt: string) {
  const values: unknown[] = [query.userId, fromAt, toAt, query.limit + 1];
  if (query.after) values.push(query.after.value, query.after.id);
  const { rows } = await db.query<HistoryRow>(SQL_STATEMENT_ROWS(query.after !== null), values);
  const page = rows.slice(0, query.limit);
  const last = page.at(-1);
  return {
    rows: page,
    nextCursor: rows.length > query.limit && last ? encodeCursor(last.date_key, Number(last.id)) : null,
  };
}

/** What the month's rows up to the cursor did to the balances; nothing on the first page. */
async function rowsBefore(db: pg.Pool, query: StatementQuery, fromAt: string): Promise<StatementBalances> {
  if (!query.after) return NO_BALANCES;
  const { rows } = await db.query<{ transaction_type: string; total: string }>({
    name: 'q_statement_rows_before',
    text: SQL_STATEMENT_ROWS_BEFORE,
    values: [query.userId, fromAt, query.after.value, query.after.id],
  });
  return rows.reduce(
    (sum, r) => addBalances(sum, rowEffect(r.transaction_type as TransactionType, BigInt(r.total))),
    NO_BALANCES,
  );
}

function balancesOf(b: { available: bigint; reserved: bigint; incoming: bigint }): StatementBalances {
  return { spendable: b.available + b.incoming, reserved: b.reserved };
}

function statementView(b: StatementBalances): StatementBalancesView {
  return { amount: formatMinor(b.spendable), reserved: formatMinor(b.reserved) };
}

function balancesView(b: { available: bigint; reserved: bigint; incoming: bigint }) {
  return { ...statementView(balancesOf(b)), incoming: formatMinor(b.incoming) };
}
