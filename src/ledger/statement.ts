/**
 * Monthly statements: how each history row moves the two balances a statement shows, so rows
 * can carry the running balance after them.
 *
 * The balances are the ones the balance endpoint shows: `amount` (available plus incoming, what
 * the user can spend) and `reserved`. A history row's `amount` is signed from the user's point
 * of view, but what it moves depends on its type: a reserve moves money from available into
 * reserved, a capture takes it out of reserved into a service's revenue, a release returns it.
 * A settle (incoming to available) writes no history row and changes neither balance.
 */
import type { TransactionType } from '../commands/result-codes.ts';

export interface StatementBalances {
  /** Available plus incoming, in minor units. */
  readonly spendable: bigint;
  readonly reserved: bigint;
}

export const NO_BALANCES: StatementBalances = { spendable: 0n, reserved: 0n };

/**
 * What one history row (or the sum of several rows of one type: the effect is linear in the
 * amount) does to the statement's balances. `amount` is the row's signed amount.
 */
export function rowEffect(type: TransactionType, amount: bigint): StatementBalances {
  switch (type) {
    case 'deposit':
    case 'withdraw':
    case 'transfer_out':
    case 'transfer_in':
    case 'refund': // amount > 0: from the service's revenue back into available
      return { spendable: amount, reserved: 0n };
    case 'reserve': // amount < 0: out of available, into reserved
    case 'release': // amount > 0: out of reserved, back into available
    case 'expire': // amount > 0: an expired hold, back into available
      return { spendable: amount, reserved: -amount };
    case 'capture': // amount < 0: out of reserved, into the service's revenue
      return { spendable: 0n, reserved: amount };
  }
}

export function addBalances(a: StatementBalances, b: StatementBalances): StatementBalances {
  return { spendable: a.spendable + b.spendable, reserved: a.reserved + b.reserved };
}

/** The balances after each row, starting from `opening`; rows in time order. */
export function runningBalances(
  opening: StatementBalances,
  rows: readonly { readonly type: TransactionType; readonly amount: bigint }[],
): StatementBalances[] {
  const after: StatementBalances[] = [];
  let balance = opening;
  for (const row of rows) {
    balance = addBalances(balance, rowEffect(row.type, row.amount));
    after.push(balance);
  }
  return after;
}

/**
 * The calendar month after `month` (YYYY-MM), as year and month numbers: a statement covers
 * [first instant of `month`, first instant of the next) in the report's time zone.
 */
export function monthBounds(month: string): { from: [number, number]; to: [number, number] } {
  const [year, monthNumber] = month.split('-').map(Number) as [number, number];
  const to: [number, number] = monthNumber === 12 ? [year + 1, 1] : [year, monthNumber + 1];
  return { from: [year, monthNumber], to };
}
