/** Reads answered from PostgreSQL: balance, history, the revenue report, and command polling. */
import type { FastifyInstance } from 'fastify';
import { formatMinor } from '../../commands/money.ts';
import { ApiError } from '../../errors.ts';
import { balanceOfUser, decodeCursor, historyPage, loadOutcome, revenueReport } from '../../ledger/queries.ts';
import { authenticate, parseOr400, requireAccount, requireRole } from '../http.ts';
import type { ApiContext } from '../context.ts';
import { transactionBody, visibleTo } from './commands.ts';

export const DEFAULT_PAGE_ITEMS = 20;

export function registerReadRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/api/balances', async (request) => {
    const principal = await authenticate(request, ctx.tokens);
    const { user_id: userId } = parseOr400(ctx.schemas.balanceQuery, request.query);
    requireAccount(principal, userId);
    const balance = await balanceOfUser(ctx.pool, userId);
    if (!balance) throw new ApiError('not_found', `No user ${userId}.`);
    return { user_id: userId, amount: balance.available, reserved: balance.reserved, incoming: balance.incoming, currency: 'RUB' };
  });

  app.get('/api/transactions', async (request) => {
    const principal = await authenticate(request, ctx.tokens);
    const query = parseOr400(ctx.schemas.historyQuery, request.query);
    requireAccount(principal, query.user_id);
    const after = query.cursor === undefined ? null : decodeCursor(query.cursor);
    if (query.cursor !== undefined && (!after || (query.sort === 'amount' && !/^-?[0-9]{1,19}$/.test(after.value)) || (query.sort === 'date' && Number.isNaN(Date.parse(after.value))))) {
      throw new ApiError('validation_failed', 'Invalid cursor.', [{ field: 'cursor', message: 'must be a next_cursor this endpoint returned, with the same sort' }]);
    }
    return historyPage(ctx.pool, { userId: query.user_id, sort: query.sort, order: query.order, limit: query.limit ?? DEFAULT_PAGE_ITEMS, after });
  });

  app.get('/api/reports/revenue', async (request, reply) => {
    const principal = await authenticate(request, ctx.tokens);
    requireRole(principal, ['service', 'admin']);
    const { month } = parseOr400(ctx.schemas.revenueQuery, request.query);
    const lines = await revenueReport(ctx.pool, month);
    if (/application\/json/.test(request.headers.accept ?? '')) {
      return { month, services: lines.map((l) => ({ service_id: l.service_id, service_name: l.service_name, revenue: formatMinor(l.revenueMinor) })) };
    }
    const csv = ['service_id;service_name;revenue', ...lines.map((l) => `${l.service_id};${csvField(l.service_name)};${formatMinor(l.revenueMinor)}`)].join('\r\n');
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header('content-disposition', `attachment; filename="revenue-${month}.csv"`)
      .send(`${csv}\r\n`);
  });

  app.get('/api/commands/:id', async (request, reply) => {
    const principal = await authenticate(request, ctx.tokens);
    const { id } = parseOr400(ctx.schemas.commandParams, request.params);
    const stored = await loadOutcome(ctx.pool, id);
    if (stored) {
      requireAccount(principal, stored.userId);
      return { ...transactionBody(visibleTo(principal, stored.reply)), code: stored.reply.code, message: stored.reply.message };
    }
    const owner = ctx.pending.owner(id);
    if (owner === null) throw new ApiError('not_found', 'No command with this id has been decided or is pending here.');
    requireAccount(principal, owner);
    return reply.code(200).send({ command_id: id, status: 'pending' });
  });
}

/** Names are free text: quote a field that holds the separator, a quote or a line break. */
function csvField(value: string): string {
  return /[;"\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}
