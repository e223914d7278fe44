/** GET /api/statements/?user_id=N&month=YYYY-MM: a user's monthly statement, as JSON or CSV. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import type { ApiContext } from '../context.ts';
import { principalOf, type RouteDoc, type ZodTypeProvider } from '../route.ts';
import { statementOfUser, type Statement } from '../statements.ts';
import { csvText } from '../csv.ts';
import { commandIdShownTo, validCursor } from './reads.ts';

const STATEMENT_DOC: RouteDoc = {
  summary: "A user's monthly statement: opening balance, rows with running balances, closing balance (JSON, or CSV)",
  tag: 'reads',
  auth: true,
  responses: {
    '200': '{user_id, month, time_zone, from, to, complete, opening, rows, closing, next_cursor}, or CSV',
    '400': 'A malformed or future month, limit, cursor or format.',
    '403': "Another user's account.",
    '404': 'Unknown user.',
  },
};

export function registerStatementRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app
    .withTypeProvider<ZodTypeProvider>()
    .get(
      '/api/statements/',
      { schema: { querystring: ctx.schemas.statementQuery }, config: { doc: STATEMENT_DOC } },
      async (request, reply) => {
        const principal = principalOf(request);
        const query = request.query;
        ctx.permissions.require(principal, 'read_account', { userId: query.user_id });
        const statement = await statementOfUser(ctx.pool, {
          userId: query.user_id,
          month: query.month,
          timeZone: ctx.config.reports.timeZone,
          limit: query.limit ?? ctx.config.limits.statementRowsMax,
          after: query.cursor === undefined ? null : validCursor(query.cursor, 'date'),
        });
        if (statement === 'unknown') throw new ApiError('not_found', `No user ${query.user_id}.`);
        if (statement === 'future')
          throw new ApiError('validation_failed', 'Invalid month.', [
            { field: 'month', message: 'must not be in the future' },
          ]);
        const body = {
          user_id: query.user_id,
          month: query.month,
          time_zone: ctx.config.reports.timeZone,
          from: statement.from,
          to: statement.to,
          complete: statement.complete,
          currency: 'RUB',
          opening: statement.opening,
          // Another caller's Idempotency-Key shows only as an opaque reference, as in the history.
          rows: statement.rows.map((row) => ({
            ...row,
            command_id: commandIdShownTo(principal, row.command_id, ctx.config.internalCommands.secret),
          })),
          closing: statement.closing,
          next_cursor: statement.nextCursor,
        };
        if (!wantsCsv(request, query.format)) return body;
        return sendCsv(
          reply,
          `statement-${query.user_id}-${query.month}.csv`,
          statementCsv(statement),
          statement.nextCursor,
        );
      },
    );
}

/** CSV when asked by `format=csv` or by an Accept header that names text/csv; JSON otherwise. */
function wantsCsv(request: FastifyRequest, format: 'json' | 'csv' | undefined): boolean {
  if (format !== undefined) return format === 'csv';
  return /\btext\/csv\b/.test(request.headers.accept ?? '');
}

const CSV_HEADER = [
  'created_at',
  'id',
  'transaction_type',
  'amount',
  'service_id',
  'order_id',
  'counterparty_id',
  'comment',
  'balance_after',
  'reserved_after',
];

/**
 * One line per row, between an `opening` line and a `closing` line that carry the balances; the
 * separator is `;`, as in the revenue report. A later page (next_cursor in the `x-next-cursor`
 * header) has the same opening and closing lines.
 */
export function statementCsv(statement: Statement): string {
  const balanceLine = (label: string, b: { amount: string; reserved: string }) => [
    '',
    '',
    label,
    '',
    '',
    '',
    '',
    '',
    b.amount,
    b.reserved,
  ];
  const lines = [
    CSV_HEADER,
    balanceLine('opening', statement.opening),
    ...statement.rows.map((r) => [
      r.created_at,
      String(r.id),
      r.transaction_type,
      r.amount,
      r.service_id === null ? '' : String(r.service_id),
      r.order_id === null ? '' : String(r.order_id),
      r.counterparty_id === null ? '' : String(r.counterparty_id),
      r.comment ?? '',
      r.balance_after.amount,
      r.balance_after.reserved,
    ]),
    balanceLine('closing', statement.closing),
  ];
  return csvText(lines);
}

function sendCsv(reply: FastifyReply, filename: string, csv: string, nextCursor: string | null) {
  if (nextCursor !== null) reply.header('x-next-cursor', nextCursor);
  return reply
    .header('content-type', 'text/csv; charset=utf-8')
    .header('content-disposition', `attachment; filename="${filename}"`)
    .send(csv);
}
