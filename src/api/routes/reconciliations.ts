/**
 * Reconciliation over HTTP (docs/reconciliation.md), for admins: upload a service's statement as
 * CSV and get the run; read a run's results as JSON pages or as one CSV for a spreadsheet. The
 * metric `balance_reconciliation_unmatched_minor` holds the latest run's unmatched money per
 * service and side, as this gateway ran it.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { formatMinor } from '../../commands/money.ts';
import { ApiError } from '../../errors.ts';
import { parseAmountTolerance, runReconciliation } from '../../ledger/reconciliation/run.ts';
import { parseMapping, StatementError } from '../../ledger/reconciliation/statement-csv.ts';
import { resultsOf, runById, type ResultRow, type StoredRun } from '../../ledger/store/reconciliations.ts';
import type { Principal } from '../../commands/permissions.ts';
import type { ApiContext } from '../context.ts';
import { csvText } from '../csv.ts';
import { principalOf, type RouteDoc, type ZodTypeProvider } from '../route.ts';

const DEFAULT_RESULTS_PER_PAGE = 1_000;
/** The most services whose latest unmatched totals the metric keeps. */
const METRIC_SERVICES_MAX = 1_000;

const POST_DOC: RouteDoc = {
  summary: "Reconcile a service's statement (CSV) against the ledger",
  tag: 'reconciliation',
  auth: true,
  authBeforeBody: true,
  responses: {
    '201':
      '{reconciliation_id, repeated: false, service_id, created_at, statement_lines, options, summary: {categories: {<category>: {count, statement, ledger}}, unmatched: {count, statement, ledger}}, results_url}',
    '200':
      'The same file with the same options was reconciled before: that run, with repeated: true (`rerun=true` makes a new run, after the ledger was corrected)',
    '400': '`invalid_statement` (naming the line and the column; nothing stored), or a bad query',
    '403': 'Only admins.',
    '413': 'The file is over RECONCILIATION_BYTES_MAX.',
    '415': 'The body is not text/csv.',
  },
};
const GET_DOC: RouteDoc = {
  summary:
    'A reconciliation run and its results (JSON pages, or all of them as CSV with format=csv or Accept: text/csv)',
  tag: 'reconciliation',
  auth: true,
  responses: {
    '200':
      '{...the run, results: [{position, category, rule, statement_line, reference, direction, statement_amount, statement_time, ledger_command_ids, ledger_amount, ledger_time, difference}], next_after | null}',
    '403': 'Only admins.',
    '404': 'No such run.',
  },
};

function requireAdmin(principal: Principal): void {
  if (principal.role !== 'admin') throw new ApiError('forbidden', 'Only admins may reconcile statements.');
}

export function registerReconciliationRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  const unmatched = new Map<number, { statement: number; ledger: number }>();
  ctx.metrics.register(
    'balance_reconciliation_unmatched_minor',
    "money the latest reconciliation of each service left unmatched, in kopecks: side=statement is on the provider's statement only (or differs), side=ledger in the ledger only (or differs)",
    'gauge',
    () =>
      [...unmatched].flatMap(([service, sides]) => [
        { labels: { service_id: String(service), side: 'statement' }, value: sides.statement },
        { labels: { service_id: String(service), side: 'ledger' }, value: sides.ledger },
      ]),
  );

  typed.post(
    '/api/reconciliations/',
    {
      schema: { querystring: ctx.schemas.reconciliationQuery },
      bodyLimit: ctx.config.reconciliation.bytesMax,
      config: { doc: POST_DOC },
      // Only an admin's statement is read at all.
      onRequest: async (request) => requireAdmin(principalOf(request)),
    },
    async (request, reply) => {
      const principal = principalOf(request);
      if (!Buffer.isBuffer(request.body))
        throw new ApiError('unsupported_media_type', 'Send the statement as text/csv.');
      const query = request.query;
      const tolerance =
        query.amount_tolerance === undefined
          ? BigInt(ctx.config.reconciliation.amountTolerance)
          : toleranceOf(query.amount_tolerance);
      try {
        const { run, repeated } = await runReconciliation(ctx.pool, {
          serviceId: query.service_id,
          statement: request.body,
          mapping: query.map === undefined ? {} : parseMapping(query.map),
          options: {
            amountToleranceMinor: tolerance,
            timeDriftMs: (query.time_drift_s ?? ctx.config.reconciliation.timeDriftS) * 1000,
          },
          principal: `http:${principal.userId}`,
          rerun: query.rerun === 'true',
        });
        // A repeated run's totals are old news: the metric keeps the latest run made.
        if (!repeated) remember(unmatched, run);
        return reply.code(repeated ? 200 : 201).send({ ...runJson(run), repeated });
      } catch (error) {
        if (error instanceof StatementError) throw new ApiError('invalid_statement', error.message);
        throw error;
      }
    },
  );

  typed.get(
    '/api/reconciliations/:id',
    {
      schema: { params: ctx.schemas.reconciliationParams, querystring: ctx.schemas.reconciliationResultsQuery },
      config: { doc: GET_DOC },
    },
    async (request, reply) => {
      requireAdmin(principalOf(request));
      const run = await runById(ctx.pool, request.params.id);
      if (!run) throw new ApiError('not_found', `No reconciliation ${request.params.id}.`);
      const { format, after = -1, limit = DEFAULT_RESULTS_PER_PAGE } = request.query;
      if (format === 'csv' || (format === undefined && /\btext\/csv\b/.test(request.headers.accept ?? '')))
        return sendResultsCsv(ctx, reply, run);
      const results = await resultsOf(ctx.pool, run.id, after, limit);
      return { ...runJson(run), results, next_after: results.length === limit ? results.at(-1)!.position : null };
    },
  );
}

function toleranceOf(text: string): bigint {
  const parsed = parseAmountTolerance(text);
  if (!parsed.ok)
    throw new ApiError('validation_failed', 'Invalid amount_tolerance.', [
      { field: 'amount_tolerance', message: parsed.message },
    ]);
  return parsed.minor;
}

function runJson(run: StoredRun) {
  return {
    reconciliation_id: run.id,
    service_id: run.serviceId,
    created_at: run.createdAt,
    principal: run.principal,
    statement_lines: run.statementLines,
    options: run.options,
    summary: run.summary,
    results_url: `/api/reconciliations/${run.id}`,
  };
}

function remember(unmatched: Map<number, { statement: number; ledger: number }>, run: StoredRun): void {
  const totals = (run.summary as { unmatched: { statement: string; ledger: string } }).unmatched;
  if (!unmatched.has(run.serviceId) && unmatched.size >= METRIC_SERVICES_MAX) return;
  // The summary's decimals have two places exactly: the digits are the kopecks.
  const minor = (decimal: string) => Number(BigInt(decimal.replace('.', '')));
  unmatched.set(run.serviceId, { statement: minor(totals.statement), ledger: minor(totals.ledger) });
}

const RESULTS_CSV_HEADER = [
  'position',
  'category',
  'rule',
  'statement_line',
  'reference',
  'direction',
  'statement_amount',
  'statement_time',
  'ledger_command_ids',
  'ledger_amount',
  'ledger_time',
  'difference',
];

/** Every result of the run, read a page at a time. */
async function sendResultsCsv(ctx: ApiContext, reply: FastifyReply, run: StoredRun) {
  const lines: string[][] = [RESULTS_CSV_HEADER];
  const minor = (v: string | null) => (v === null ? '' : formatMinor(BigInt(v)));
  for (let after = -1; ; ) {
    const page: ResultRow[] = await resultsOf(ctx.pool, run.id, after, 10_000);
    for (const r of page)
      lines.push([
        String(r.position),
        r.category,
        r.rule ?? '',
        r.statement_line === null ? '' : String(r.statement_line),
        r.reference ?? '',
        r.direction,
        minor(r.statement_amount),
        r.statement_time ?? '',
        r.ledger_command_ids.join(' '),
        minor(r.ledger_amount),
        r.ledger_time ?? '',
        minor(r.difference),
      ]);
    if (page.length < 10_000) break;
    after = page.at(-1)!.position;
  }
  return reply
    .header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="reconciliation-${run.id}.csv"`)
    .send(csvText(lines));
}
