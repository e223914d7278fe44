/**
 * One reconciliation run (docs/reconciliation.md): read the statement, take the service's
 * recorded payments in its period (widened by the drift), match, summarise, store. The same file
 * with the same options again answers the stored run, so a retried upload or a second operator
 * gets the same answer rather than a second run.
 */
import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { formatMinor, parseAmount } from '../../commands/money.ts';
import {
  ledgerPaymentsByRef,
  ledgerPaymentsOf,
  RECONCILIATION_LEDGER_ROWS_MAX,
  runByRequest,
  storeRun,
  type StoredRun,
} from '../store/reconciliations.ts';
import {
  CATEGORIES,
  type Category,
  type LedgerPayment,
  matchStatement,
  type MatchOptions,
  summarise,
} from './match.ts';
import { parseStatement, StatementError, type StatementColumn, type StatementLine } from './statement-csv.ts';

export interface RunRequest {
  readonly serviceId: number;
  readonly statement: Uint8Array;
  readonly mapping: Partial<Record<StatementColumn, string>>;
  readonly options: MatchOptions;
  /** Who ran it: `http:<user id>` or `cli`. */
  readonly principal: string;
  /** Run again even if the same file with the same options was reconciled (the ledger was corrected since). */
  readonly rerun?: boolean;
}

/** The largest amount tolerance a run may ask for, in minor units. */
const AMOUNT_TOLERANCE_MINOR_MAX = 100_000_000n;

/** A run's amount tolerance from its decimal text (`0`, `0.50`): the minor units, or what is wrong with it. */
export function parseAmountTolerance(text: string): { ok: true; minor: bigint } | { ok: false; message: string } {
  if (/^0+(\.0+)?$/.test(text)) return { ok: true, minor: 0n };
  const parsed = parseAmount(text, AMOUNT_TOLERANCE_MINOR_MAX);
  return parsed.ok ? { ok: true, minor: parsed.minor } : { ok: false, message: parsed.message };
}

/** The categories where money is not accounted for on one side or the other. */
const UNMATCHED: readonly Category[] = [
  'amount_differs',
  'time_differs',
  'duplicate_in_statement',
  'missing_in_ledger',
  'missing_in_statement',
];

export async function runReconciliation(
  pool: pg.Pool,
  request: RunRequest,
): Promise<{ run: StoredRun; repeated: boolean }> {
  const options = {
    mapping: request.mapping,
    amount_tolerance: formatMinor(request.options.amountToleranceMinor),
    time_drift_s: request.options.timeDriftMs / 1000,
  };
  const requestSha256 = createHash('sha256')
    .update(JSON.stringify({ service_id: request.serviceId, ...options }))
    .update('\u0000')
    .update(request.statement)
    .digest('hex');
  const stored = request.rerun ? null : await runByRequest(pool, request.serviceId, requestSha256);
  if (stored) return { run: stored, repeated: true };
  const lines = parseStatement(request.statement, request.mapping);
  const payments = await ledgerSide(pool, request.serviceId, lines, request.options.timeDriftMs);
  const results = matchStatement(lines, payments, request.options);
  const id = randomUUID();
  const run = await storeRun(
    pool,
    {
      id,
      serviceId: request.serviceId,
      // A rerun is a run of its own; the plain request keeps answering the first.
      requestSha256: request.rerun ? `${requestSha256}~${id}` : requestSha256,
      principal: request.principal,
      options,
      statementLines: lines.length,
      summary: summaryJson(summarise(results)),
    },
    results,
  );
  // Another process may have stored the same request first: then that run is the answer.
  return { run, repeated: run.id !== id };
}

/** The service's payments in the statement's period (widened by the drift), and those its references name from any time. */
async function ledgerSide(
  pool: pg.Pool,
  serviceId: number,
  lines: readonly StatementLine[],
  driftMs: number,
): Promise<LedgerPayment[]> {
  if (lines.length === 0) return [];
  let first = lines[0]!.timeMs;
  let last = first;
  for (const line of lines) {
    if (line.timeMs < first) first = line.timeMs;
    if (line.timeMs > last) last = line.timeMs;
  }
  const inPeriod = await ledgerPaymentsOf(pool, serviceId, first - driftMs, last + driftMs);
  if (inPeriod === 'too_many')
    throw new StatementError(
      `the ledger has more than ${RECONCILIATION_LEDGER_ROWS_MAX} payments of this service in the statement's period; split the statement`,
    );
  const byRef = await ledgerPaymentsByRef(
    pool,
    serviceId,
    lines.map((l) => l.reference),
  );
  const seen = new Set(inPeriod.map((p) => p.commandId));
  return [...inPeriod, ...byRef.filter((p) => !seen.has(p.commandId))];
}

function summaryJson(summary: ReturnType<typeof summarise>): Record<string, unknown> {
  const categories = Object.fromEntries(
    CATEGORIES.map((c) => [
      c,
      {
        count: summary[c].count,
        statement: formatMinor(summary[c].statementMinor),
        ledger: formatMinor(summary[c].ledgerMinor),
      },
    ]),
  );
  const sum = (pick: (s: (typeof summary)[Category]) => bigint) =>
    UNMATCHED.reduce((total, c) => total + pick(summary[c]), 0n);
  return {
    categories,
    unmatched: {
      count: UNMATCHED.reduce((n, c) => n + summary[c].count, 0),
      statement: formatMinor(sum((s) => s.statementMinor)),
      ledger: formatMinor(sum((s) => s.ledgerMinor)),
    },
  };
}
