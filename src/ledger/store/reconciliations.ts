/**
 * Reconciliation runs as stored (sql/0028_reconciliation.sql): the ledger's side of a statement
 * (a service's recorded deposits and withdrawals in the statement's period), and each run with
 * its results, written in one transaction.
 */
import type pg from 'pg';
import { withClient } from '../../db/pool.ts';
import type { LedgerPayment, MatchResult } from '../reconciliation/match.ts';

/** The most ledger payments one run may hold against a statement. */
export const RECONCILIATION_LEDGER_ROWS_MAX = 200_000;
/** The most result rows one INSERT carries. */
const RESULTS_PER_INSERT = 5_000;

interface PaymentRow {
  command_id: string;
  external_ref: string | null;
  amount: string;
  time_ms: string;
  direction: 'deposit' | 'withdraw';
}

const SQL_PAYMENT_COLUMNS = `command_id, external_ref, amount::text,
  (extract(epoch FROM occurred_at) * 1000)::bigint::text AS time_ms, direction`;

function paymentOf(r: PaymentRow): LedgerPayment {
  return {
    commandId: r.command_id,
    externalRef: r.external_ref,
    amount: BigInt(r.amount),
    timeMs: Number(r.time_ms),
    direction: r.direction,
  };
}

export async function ledgerPaymentsOf(
  db: pg.Pool | pg.PoolClient,
  serviceId: number,
  fromMs: number,
  toMs: number,
): Promise<LedgerPayment[] | 'too_many'> {
  const { rows } = await db.query<PaymentRow>(
    `SELECT ${SQL_PAYMENT_COLUMNS} FROM external_payments WHERE service_id = $1 AND occurred_at BETWEEN $2 AND $3
     ORDER BY occurred_at, command_id LIMIT $4`,
    [serviceId, new Date(fromMs), new Date(toMs), RECONCILIATION_LEDGER_ROWS_MAX + 1],
  );
  if (rows.length > RECONCILIATION_LEDGER_ROWS_MAX) return 'too_many';
  return rows.map(paymentOf);
}

/**
 * The service's payments with these references, whenever they were made: a line whose payment is
 * outside the statement's period is then `time_differs`, not `missing_in_ledger`.
 */
export async function ledgerPaymentsByRef(
  db: pg.Pool | pg.PoolClient,
  serviceId: number,
  references: readonly string[],
): Promise<LedgerPayment[]> {
  if (references.length === 0) return [];
  const { rows } = await db.query<PaymentRow>(
    `SELECT ${SQL_PAYMENT_COLUMNS} FROM external_payments WHERE service_id = $1 AND external_ref = ANY($2::text[])
     ORDER BY occurred_at, command_id`,
    [serviceId, [...new Set(references)]],
  );
  return rows.map(paymentOf);
}

export interface StoredRun {
  readonly id: string;
  readonly serviceId: number;
  readonly principal: string;
  readonly options: Record<string, unknown>;
  readonly statementLines: number;
  readonly summary: Record<string, unknown>;
  readonly createdAt: string;
}

interface RunRow {
  id: string;
  service_id: string;
  principal: string;
  options: Record<string, unknown>;
  statement_lines: number;
  summary: Record<string, unknown>;
  created_at: Date;
}

const SQL_RUN_COLUMNS = 'id, service_id::text, principal, options, statement_lines, summary, created_at';

function runOf(row: RunRow): StoredRun {
  return {
    id: row.id,
    serviceId: Number(row.service_id),
    principal: row.principal,
    options: row.options,
    statementLines: row.statement_lines,
    summary: row.summary,
    createdAt: row.created_at.toISOString(),
  };
}

export async function runByRequest(db: pg.Pool, serviceId: number, requestSha256: string): Promise<StoredRun | null> {
  const { rows } = await db.query<RunRow>(
    `SELECT ${SQL_RUN_COLUMNS} FROM reconciliations WHERE service_id = $1 AND request_sha256 = $2`,
    [serviceId, requestSha256],
  );
  return rows[0] ? runOf(rows[0]) : null;
}

export async function runById(db: pg.Pool, id: string): Promise<StoredRun | null> {
  const { rows } = await db.query<RunRow>(`SELECT ${SQL_RUN_COLUMNS} FROM reconciliations WHERE id = $1`, [id]);
  return rows[0] ? runOf(rows[0]) : null;
}

/**
 * Stores a run and its results in one transaction; if the same request was stored meanwhile
 * (another process ran the same file), answers that one instead.
 */
export function storeRun(
  pool: pg.Pool,
  run: Omit<StoredRun, 'createdAt'> & { readonly requestSha256: string },
  results: readonly MatchResult[],
): Promise<StoredRun> {
  return withClient(pool, async (client) => {
    await client.query('BEGIN');
    try {
      const inserted = await client.query<RunRow>(
        `INSERT INTO reconciliations (id, service_id, request_sha256, principal, options, statement_lines, summary)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (service_id, request_sha256) DO NOTHING
         RETURNING ${SQL_RUN_COLUMNS}`,
        [run.id, run.serviceId, run.requestSha256, run.principal, run.options, run.statementLines, run.summary],
      );
      if (inserted.rows.length === 0) {
        await client.query('ROLLBACK');
        return (await runByRequest(pool, run.serviceId, run.requestSha256))!;
      }
      for (let from = 0; from < results.length; from += RESULTS_PER_INSERT)
        await insertResults(client, run.id, from, results.slice(from, from + RESULTS_PER_INSERT));
      await client.query('COMMIT');
      return runOf(inserted.rows[0]!);
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  });
}

async function insertResults(client: pg.PoolClient, id: string, from: number, results: readonly MatchResult[]) {
  const column = <T>(pick: (r: MatchResult) => T) => results.map(pick);
  const time = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  await client.query(
    `INSERT INTO reconciliation_results (reconciliation_id, position, category, rule, statement_line, reference,
       direction, statement_amount, statement_time, ledger_command_ids, ledger_amount, ledger_time, difference)
     SELECT $1, $2 + k.i - 1, k.category, k.rule, k.line, k.reference, k.direction, k.statement_amount,
            k.statement_time, ARRAY(SELECT json_array_elements_text(k.command_ids)), k.ledger_amount, k.ledger_time, k.difference
     FROM unnest($3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::bigint[], $9::timestamptz[],
                 $10::json[], $11::bigint[], $12::timestamptz[], $13::bigint[]) WITH ORDINALITY
       AS k(category, rule, line, reference, direction, statement_amount, statement_time, command_ids, ledger_amount,
            ledger_time, difference, i)`,
    [
      id,
      from,
      column((r) => r.category),
      column((r) => r.rule),
      column((r) => r.line?.line ?? null),
      column((r) => r.line?.reference ?? r.payments[0]?.externalRef ?? null),
      column((r) => r.direction),
      column((r) => (r.line ? String(r.line.amount) : null)),
      column((r) => time(r.line?.timeMs)),
      column((r) => JSON.stringify(r.payments.map((p) => p.commandId))),
      column((r) => (r.payments.length > 0 ? String(r.payments.reduce((s, p) => s + p.amount, 0n)) : null)),
      column((r) => time(r.payments[0]?.timeMs)),
      column((r) => (r.difference === null ? null : String(r.difference))),
    ],
  );
}

export interface ResultRow {
  readonly position: number;
  readonly category: string;
  readonly rule: string | null;
  readonly statement_line: number | null;
  readonly reference: string | null;
  readonly direction: string;
  readonly statement_amount: string | null;
  readonly statement_time: string | null;
  readonly ledger_command_ids: string[];
  readonly ledger_amount: string | null;
  readonly ledger_time: string | null;
  readonly difference: string | null;
}

/** A page of a run's results after `after` (a position), in order. */
export async function resultsOf(db: pg.Pool, id: string, after: number, limit: number): Promise<ResultRow[]> {
  const { rows } = await db.query<ResultRow>(
    `SELECT position, category, rule, statement_line, reference, direction, statement_amount::text,
            to_json(statement_time)#>>'{}' AS statement_time, ledger_command_ids, ledger_amount::text,
            to_json(ledger_time)#>>'{}' AS ledger_time, difference::text
     FROM reconciliation_results WHERE reconciliation_id = $1 AND position > $2 ORDER BY position LIMIT $3`,
    [id, after, limit],
  );
  return rows;
}
