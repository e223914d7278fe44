/**
 * One reconciliation run (docs/reconciliation.md): read the statement, take the service's
 * recorded payments in its period (widened by the drift), match, summarise, store. The same file
 * with the same options again answers the stored run, so a retried upload or a second operator
 * gets the same answer rather than a second run.
 */
import { createHash, randomUUID } from 'node:crypto';
import type pg from 'pg';
import { formatMinor } from '../../commands/money.ts';
import {
  ledgerPaymentsOf,
  RECONCILIATION_LEDGER_ROWS_MAX,
  runByRequest,
  storeRun,
  type StoredRun,
} from '../store/reconciliations.ts';
import { CATEGORIES, type Category, matchStatement, type MatchOptions, summarise } from './match.ts';
import { parseStatement, StatementError, type StatementColumn } from './statement-csv.ts';

export interface RunRequest {
  readonly serviceId: number;
  readonly statement: Uint8Array;
  readonly mapping: Partial<Record<StatementColumn, string>>;
  readonly options: MatchOptions;
  /** Who ran it: `http:<user id>` or `cli`. */
  readonly principal: string;
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
  const stored = await runByRequest(pool, request.serviceId, requestSha256);
  if (stored) return { run: stored, repeated: true };
  const lines = parseStatement(request.statement, request.mapping);
  const times = lines.map((l) => l.timeMs);
  const drift = request.options.timeDriftMs;
  const payments =
    lines.length === 0
      ? []
      : await ledgerPaymentsOf(pool, request.serviceId, Math.min(...times) - drift, Math.max(...times) + drift);
  if (payments === 'too_many')
    throw new StatementError(
      `the ledger has more than ${RECONCILIATION_LEDGER_ROWS_MAX} payments of this service in the statement's period; split the statement`,
    );
  const results = matchStatement(lines, payments, request.options);
  const id = randomUUID();
  const run = await storeRun(
    pool,
    {
      id,
      serviceId: request.serviceId,
      requestSha256,
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
