/**
 * Matches a provider's statement against the ledger's payments of one service
 * (docs/reconciliation.md), in rounds, each only on what earlier rounds left:
 *   1. duplicates: a reference the statement already had is `duplicate_in_statement`;
 *   2. by reference: a line and the ledger payment with its reference (same direction) pair up;
 *      `matched` when the amounts agree within the tolerance and the times within the drift,
 *      else `amount_differs` or `time_differs`;
 *   3. by amount and time: a line and a payment without a reference, of the same direction,
 *      amount within the tolerance and time within the drift, the nearest in time first: `matched`;
 *   4. one to many: a line whose amount is the sum of 2 to MANY_MAX payments without a reference
 *      within the drift (a payout covering several withdrawals): `matched_many`;
 *   5. the rest: lines are `missing_in_ledger`, payments `missing_in_statement`.
 * Pure and deterministic: the same statement and payments give the same results, in order.
 */
import type { Direction, StatementLine } from './statement-csv.ts';

export interface LedgerPayment {
  readonly commandId: string;
  readonly externalRef: string | null;
  readonly amount: bigint;
  readonly timeMs: number;
  readonly direction: Direction;
}

export interface MatchOptions {
  /** The largest difference in amount still matched, in minor units. */
  readonly amountToleranceMinor: bigint;
  /** The largest difference in time still matched. */
  readonly timeDriftMs: number;
}

export const CATEGORIES = [
  'matched',
  'matched_many',
  'amount_differs',
  'time_differs',
  'duplicate_in_statement',
  'missing_in_ledger',
  'missing_in_statement',
] as const;
export type Category = (typeof CATEGORIES)[number];

/** How a pair was found. */
export type MatchRule = 'reference' | 'amount_and_time' | 'one_to_many';

export interface MatchResult {
  readonly category: Category;
  readonly rule: MatchRule | null;
  readonly direction: Direction;
  readonly line: StatementLine | null;
  readonly payments: readonly LedgerPayment[];
  /** Statement minus ledger, in minor units, where both sides are there. */
  readonly difference: bigint | null;
}

/** The most payments rules 3 and 4 look at for one line, in time order from its window's start: bounds the work per line. */
export const WINDOW_SCAN_MAX = 2_000;
/** The most ledger payments one statement line may cover (rule 4). */
export const MANY_MAX = 5;
/** The most candidates rule 4 searches for one line, the nearest in time: bounds its search. */
export const MANY_CANDIDATES_MAX = 20;
/** The most steps rule 4 takes over a whole run: bounds a run's time whatever its statement. */
export const MANY_STEPS_MAX = 2_000_000;

export function matchStatement(
  lines: readonly StatementLine[],
  payments: readonly LedgerPayment[],
  options: MatchOptions,
): MatchResult[] {
  const results: MatchResult[] = [];
  const open = new Set(payments);
  const seen = new Set<string>();
  const left: StatementLine[] = [];
  for (const line of lines) {
    const key = `${line.direction}:${line.reference}`;
    if (seen.has(key)) results.push(result('duplicate_in_statement', null, line, []));
    else {
      seen.add(key);
      left.push(line);
    }
  }
  const unpaired = byReference(left, open, options, results);
  const windows = new TimeWindows(payments, open, options.timeDriftMs);
  const stillLeft = byAmountAndTime(unpaired, windows, options, results);
  const budget = { steps: MANY_STEPS_MAX };
  for (const line of stillLeft) {
    const covered = oneToMany(line, windows, options, budget);
    if (covered) {
      for (const p of covered) open.delete(p);
      results.push(result('matched_many', 'one_to_many', line, covered));
    } else results.push(result('missing_in_ledger', null, line, []));
  }
  for (const payment of [...open].sort(byTimeThenId))
    results.push(result('missing_in_statement', null, null, [payment]));
  return results;
}

function result(
  category: Category,
  rule: MatchRule | null,
  line: StatementLine | null,
  payments: readonly LedgerPayment[],
): MatchResult {
  const ledger = payments.reduce((sum, p) => sum + p.amount, 0n);
  return {
    category,
    rule,
    direction: line?.direction ?? payments[0]!.direction,
    line,
    payments,
    difference: line && payments.length > 0 ? line.amount - ledger : null,
  };
}

function byReference(
  lines: readonly StatementLine[],
  open: Set<LedgerPayment>,
  options: MatchOptions,
  results: MatchResult[],
): StatementLine[] {
  const byRef = new Map<string, LedgerPayment>();
  for (const p of open) if (p.externalRef !== null) byRef.set(`${p.direction}:${p.externalRef}`, p);
  const unpaired: StatementLine[] = [];
  for (const line of lines) {
    const payment = byRef.get(`${line.direction}:${line.reference}`);
    if (!payment || !open.has(payment)) {
      unpaired.push(line);
      continue;
    }
    open.delete(payment);
    const category = !withinAmount(line.amount, payment.amount, options)
      ? 'amount_differs'
      : !withinTime(line.timeMs, payment.timeMs, options)
        ? 'time_differs'
        : 'matched';
    results.push(result(category, 'reference', line, [payment]));
  }
  return unpaired;
}

/**
 * The open payments of each direction without a reference, in time order, and those within the
 * drift of a time, nearest first. A payment with a reference is paired by reference only (round
 * 2): pairing it by amount with another reference's line would hide two differences.
 */
class TimeWindows {
  private readonly sorted: Record<Direction, LedgerPayment[]>;
  constructor(
    payments: readonly LedgerPayment[],
    readonly open: Set<LedgerPayment>,
    private readonly driftMs: number,
  ) {
    const unreferenced = [...payments].filter((p) => p.externalRef === null).sort(byTimeThenId);
    this.sorted = {
      deposit: unreferenced.filter((p) => p.direction === 'deposit'),
      withdraw: unreferenced.filter((p) => p.direction === 'withdraw'),
    };
  }

  /** Open unreferenced payments of `direction` within the drift of `timeMs`, nearest first; at most WINDOW_SCAN_MAX looked at. */
  *around(direction: Direction, timeMs: number): Generator<LedgerPayment> {
    const list = this.sorted[direction];
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.timeMs < timeMs) lo = mid + 1;
      else hi = mid;
    }
    let left = lo - 1;
    let right = lo;
    for (let seen = 0; seen < WINDOW_SCAN_MAX; seen++) {
      const before = left >= 0 && list[left]!.timeMs >= timeMs - this.driftMs ? list[left]! : null;
      const after = right < list.length && list[right]!.timeMs <= timeMs + this.driftMs ? list[right]! : null;
      if (!before && !after) return;
      const takeAfter = !before || (after !== null && after.timeMs - timeMs <= timeMs - before.timeMs);
      const next = takeAfter ? after! : before!;
      if (takeAfter) right++;
      else left--;
      if (this.open.has(next)) yield next;
    }
  }
}

function byAmountAndTime(
  lines: readonly StatementLine[],
  windows: TimeWindows,
  options: MatchOptions,
  results: MatchResult[],
): StatementLine[] {
  const unpaired: StatementLine[] = [];
  for (const line of [...lines].sort((a, b) => a.timeMs - b.timeMs || a.line - b.line)) {
    let best: LedgerPayment | null = null;
    for (const p of windows.around(line.direction, line.timeMs)) {
      if (!withinAmount(line.amount, p.amount, options)) continue;
      if (!best || nearer(line, p, best) < 0) best = p;
    }
    if (best) {
      windows.open.delete(best);
      results.push(result('matched', 'amount_and_time', line, [best]));
    } else unpaired.push(line);
  }
  return unpaired;
}

/** Negative when `a` is the better partner of `line` than `b`: nearer in time, then in amount, then by id. */
function nearer(line: StatementLine, a: LedgerPayment, b: LedgerPayment): number {
  const dt = Math.abs(a.timeMs - line.timeMs) - Math.abs(b.timeMs - line.timeMs);
  if (dt !== 0) return dt;
  const da = abs(a.amount - line.amount) - abs(b.amount - line.amount);
  if (da !== 0n) return da < 0n ? -1 : 1;
  return a.commandId < b.commandId ? -1 : 1;
}

/**
 * 2 to MANY_MAX open payments within the drift whose sum is the line's amount (within the
 * tolerance). The search spends steps from `budget`, shared by the whole run: once it is spent,
 * lines left are reported missing rather than searched (docs/reconciliation.md).
 */
function oneToMany(
  line: StatementLine,
  windows: TimeWindows,
  options: MatchOptions,
  budget: { steps: number },
): LedgerPayment[] | null {
  const candidates = [...windows.around(line.direction, line.timeMs)]
    .filter((p) => p.amount < line.amount + options.amountToleranceMinor)
    .sort((a, b) => Math.abs(a.timeMs - line.timeMs) - Math.abs(b.timeMs - line.timeMs) || byTimeThenId(a, b))
    .slice(0, MANY_CANDIDATES_MAX);
  const chosen: LedgerPayment[] = [];
  const search = (from: number, sum: bigint): boolean => {
    if (chosen.length >= 2 && withinAmount(line.amount, sum, options)) return true;
    if (chosen.length === MANY_MAX) return false;
    for (let i = from; i < candidates.length; i++) {
      if (budget.steps <= 0) return false;
      budget.steps -= 1;
      const next = sum + candidates[i]!.amount;
      if (next > line.amount + options.amountToleranceMinor) continue;
      chosen.push(candidates[i]!);
      if (search(i + 1, next)) return true;
      chosen.pop();
    }
    return false;
  };
  return search(0, 0n) ? [...chosen].sort(byTimeThenId) : null;
}

function withinAmount(a: bigint, b: bigint, options: MatchOptions): boolean {
  return abs(a - b) <= options.amountToleranceMinor;
}

function withinTime(a: number, b: number, options: MatchOptions): boolean {
  return Math.abs(a - b) <= options.timeDriftMs;
}

function abs(n: bigint): bigint {
  return n < 0n ? -n : n;
}

function byTimeThenId(a: LedgerPayment, b: LedgerPayment): number {
  return a.timeMs - b.timeMs || (a.commandId < b.commandId ? -1 : a.commandId > b.commandId ? 1 : 0);
}

/** Counts and totals per category: what a finance team reads first. */
export interface CategorySummary {
  readonly count: number;
  readonly statementMinor: bigint;
  readonly ledgerMinor: bigint;
}

export function summarise(results: readonly MatchResult[]): Record<Category, CategorySummary> {
  const summary = Object.fromEntries(
    CATEGORIES.map((c) => [c, { count: 0, statementMinor: 0n, ledgerMinor: 0n }]),
  ) as Record<Category, { count: number; statementMinor: bigint; ledgerMinor: bigint }>;
  for (const r of results) {
    const s = summary[r.category];
    s.count += 1;
    s.statementMinor += r.line?.amount ?? 0n;
    s.ledgerMinor += r.payments.reduce((sum, p) => sum + p.amount, 0n);
  }
  return summary;
}
