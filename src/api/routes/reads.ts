/** Reads answered from PostgreSQL: balance, history, the revenue report, and command polling. */
import { createHmac } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { formatMinor } from '../../commands/money.ts';
import { EXPIRE_ID_PREFIX, httpScopedId, HTTP_KEY_PATTERN, parseHttpScopedId } from '../../commands/schema.ts';
import { ApiError } from '../../errors.ts';
import {
  alertsOfUser,
  balanceOfUser,
  isKnownUser,
  balanceOfUserAt,
  decodeCursor,
  historyPage,
  loadOutcome,
  revenueReport,
  type StoredOutcome,
} from '../read-model.ts';
import { principalOf, type RouteDoc, type ZodTypeProvider } from '../route.ts';
import type { Principal } from '../../commands/permissions.ts';
import type { ApiContext } from '../context.ts';
import { isInstant } from '../calendar.ts';
import { csvText } from '../csv.ts';
import { forCaller, transactionBody } from './commands.ts';
import { convertBalance, type LedgerAmounts } from '../balance-currency.ts';
import { LEDGER_CURRENCY } from '../../fx/convert.ts';

export const DEFAULT_PAGE_ITEMS = 20;
/** The `date_key` a history cursor carries: what historySql formats, and nothing else. */
const CURSOR_DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$/;
const isCursorDate = (value: string) => CURSOR_DATE.test(value) && isInstant(value);
const BIGINT_MAX = 9_223_372_036_854_775_807n;

/** GET /api/balances/?user_id=N&at=<instant>: the balances as of a past instant. */
async function balanceAt(ctx: ApiContext, userId: number, at: string) {
  const balance = await balanceOfUserAt(ctx.pool, userId, at);
  if (balance === 'unknown') throw new ApiError('not_found', `No user ${userId}.`);
  if (balance === 'future') {
    throw new ApiError('validation_failed', 'Invalid at.', [{ field: 'at', message: 'must not be in the future' }]);
  }
  return {
    user_id: userId,
    at: balance.at,
    amount: balance.spendable,
    reserved: balance.reserved,
    incoming: balance.incoming,
    currency: 'RUB',
    version: balance.version,
  };
}

/** The amounts in `currency`, then the rate, then the ledger's own amounts in roubles. */
async function inCurrency(ctx: ApiContext, ledger: LedgerAmounts, currency: string) {
  const { rate, ...converted } = await convertBalance(ctx.pool, ledger, currency, ctx.config.fx.rateAgeMaxS);
  return { ...converted, currency, rate, ledger: { ...ledger, currency: LEDGER_CURRENCY } };
}

const BALANCE_DOC: RouteDoc = {
  summary: "A user's balance, now or at a past instant (`at`)",
  tag: 'reads',
  auth: true,
  responses: {
    '200':
      "{user_id, amount, reserved, incoming, currency, version, frozen, frozen_reason?}: amount is spendable; incoming holds received transfers until they settle (milliseconds); version is the sequence of the user's last balance event; frozen_reason is shown to services and admins. With `currency=USD`: the amounts converted at the stored rate (half-even to the currency's minor unit), then rate {units, rub, source, date} and ledger {amount, reserved, incoming, currency: RUB}. With `at`: {user_id, at, amount, reserved, incoming, currency, version} as of that instant, `at` in UTC",
    '400': '`at` is malformed or in the future; `currency` is not three capital letters, or is combined with `at`.',
    '409': '`rate_unavailable`: no rate for the currency, or one older than FX_RATE_AGE_MAX_S.',
    '404': 'Unknown user.',
  },
};
const ALERTS_DOC: RouteDoc = {
  summary: "A user's threshold alerts",
  tag: 'reads',
  auth: true,
  responses: {
    '200':
      '{user_id, alerts: [{alert_id, direction, threshold, past}]}; past: the available balance is past the threshold now',
    '403': "Another user's account.",
    '404': 'Unknown user.',
  },
};
const HISTORY_DOC: RouteDoc = {
  summary: "A user's history, keyset-paginated",
  tag: 'reads',
  auth: true,
  responses: { '200': '{items, next_cursor}' },
};
const REVENUE_DOC: RouteDoc = {
  summary: 'Monthly revenue by service (CSV, or JSON with Accept: application/json)',
  tag: 'reads',
  auth: true,
  responses: {
    '200': 'CSV service_id;service_name;revenue;captured;refunded (revenue is net of refunds)',
    '403': 'Only service and admin.',
  },
};
const POLL_DOC: RouteDoc = {
  summary: 'Poll a command',
  tag: 'reads',
  auth: true,
  responses: {
    '200':
      '{status: pending|applied|rejected, ...}; a transfer whose credit is not yet settled answers {status: pending, credit: in_flight}',
    '404': 'Unknown command.',
  },
};

export function registerReadRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    '/api/balances/',
    { schema: { querystring: ctx.schemas.balanceQuery }, config: { doc: BALANCE_DOC } },
    async (request) => {
      const principal = principalOf(request);
      const { user_id: userId, at, currency } = request.query;
      ctx.permissions.require(principal, 'read_account', { userId });
      if (at !== undefined) return balanceAt(ctx, userId, at);
      const balance = await balanceOfUser(ctx.pool, userId);
      if (!balance) throw new ApiError('not_found', `No user ${userId}.`);
      // Read-your-writes after a transfer: see UserBalances.
      const ledger = { amount: balance.spendable, reserved: balance.reserved, incoming: balance.incoming };
      const shown =
        currency === undefined || currency === LEDGER_CURRENCY
          ? { ...ledger, currency: LEDGER_CURRENCY }
          : await inCurrency(ctx, ledger, currency);
      return {
        user_id: userId,
        ...shown,
        version: balance.version,
        frozen: balance.frozenReason !== null,
        // The reason is the back office's: the user sees that, not why.
        ...(balance.frozenReason !== null && principal.role !== 'user' ? { frozen_reason: balance.frozenReason } : {}),
      };
    },
  );

  typed.get(
    '/api/balance_alerts/',
    { schema: { querystring: ctx.schemas.alertsQuery }, config: { doc: ALERTS_DOC } },
    async (request) => {
      const principal = principalOf(request);
      const { user_id: userId } = request.query;
      ctx.permissions.require(principal, 'read_account', { userId });
      if (!(await isKnownUser(ctx.pool, userId))) throw new ApiError('not_found', `No user ${userId}.`);
      const alerts = await alertsOfUser(ctx.pool, userId);
      return {
        user_id: userId,
        alerts: alerts.map((alert) => ({
          ...alert,
          alert_id: commandIdShownTo(principal, alert.alert_id, ctx.config.internalCommands.secret),
        })),
      };
    },
  );

  typed.get(
    '/api/transactions/',
    { schema: { querystring: ctx.schemas.historyQuery }, config: { doc: HISTORY_DOC } },
    async (request) => {
      const principal = principalOf(request);
      const query = request.query;
      ctx.permissions.require(principal, 'read_account', { userId: query.user_id });
      const after = query.cursor === undefined ? null : validCursor(query.cursor, query.sort);
      const page = await historyPage(ctx.pool, {
        userId: query.user_id,
        sort: query.sort,
        order: query.order,
        limit: query.limit ?? DEFAULT_PAGE_ITEMS,
        after,
      });
      return {
        ...page,
        items: page.items.map((item) => ({
          ...item,
          command_id: commandIdShownTo(principal, item.command_id, ctx.config.internalCommands.secret),
        })),
      };
    },
  );

  typed.get(
    '/api/reports/revenue/',
    { schema: { querystring: ctx.schemas.revenueQuery }, config: { doc: REVENUE_DOC } },
    async (request, reply) => {
      const principal = principalOf(request);
      ctx.permissions.require(principal, 'read_revenue');
      const { month } = request.query;
      // A service account bound to services sees only theirs.
      const lines = (await revenueReport(ctx.pool, month, ctx.config.reports.timeZone)).filter(
        (l) => principal.role !== 'service' || ctx.permissions.servesFor(principal, l.service_id),
      );
      if (/application\/json/.test(request.headers.accept ?? '')) {
        return {
          month,
          services: lines.map((l) => ({
            service_id: l.service_id,
            service_name: l.service_name,
            revenue: formatMinor(l.revenueMinor),
            captured: formatMinor(l.capturedMinor),
            refunded: formatMinor(l.refundedMinor),
          })),
        };
      }
      const csv = csvText([
        // New columns go last, so readers of the first three keep working.
        ['service_id', 'service_name', 'revenue', 'captured', 'refunded'],
        ...lines.map((l) => [
          String(l.service_id),
          l.service_name,
          formatMinor(l.revenueMinor),
          formatMinor(l.capturedMinor),
          formatMinor(l.refundedMinor),
        ]),
      ]);
      return reply
        .header('content-type', 'text/csv; charset=utf-8')
        .header('content-disposition', `attachment; filename="revenue-${month}.csv"`)
        .send(csv);
    },
  );

  typed.get(
    '/api/commands/:id',
    { schema: { params: ctx.schemas.commandParams }, config: { doc: POLL_DOC } },
    async (request, reply) => {
      const principal = principalOf(request);
      const { id } = request.params;
      for (const candidate of candidateIds(principal, id)) {
        const stored = await loadOutcome(ctx.pool, candidate);
        // Another sender's command (a producer's id on Kafka) is shown only to a caller who may
        // read that account: a service granted deposits alone sees its own commands, no one else's.
        if (stored && !isOwnCommand(principal, candidate) && !mayRead(ctx, principal, stored.userId)) continue;
        // Debited, but the credit may not be published yet: not final, as docs/commands.md says.
        if (stored?.creditInFlight)
          return reply.code(200).send({ command_id: id, status: 'pending', credit: 'in_flight' });
        if (stored) return outcomeBody(principal, stored);
        if (ctx.pending.owner(candidate) !== null) return reply.code(200).send({ command_id: id, status: 'pending' });
      }
      throw new ApiError('not_found', 'No command with this id has been decided or is pending here.');
    },
  );
}

function isOwnCommand(principal: Principal, commandId: string): boolean {
  return parseHttpScopedId(commandId)?.userId === principal.userId;
}

function mayRead(ctx: ApiContext, principal: Principal, userId: number): boolean {
  try {
    ctx.permissions.require(principal, 'read_account', { userId });
    return true;
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) return false;
    throw error;
  }
}

/**
 * The full ids a caller may mean by `id`, in the order to try them. A key is looked up in the
 * caller's own namespace; a service may also poll ids producers used on Kafka; only an admin
 * may name another caller's scoped id. Anything else is simply not found (never a 403, which
 * would tell that the key exists).
 */
function candidateIds(principal: Principal, id: string): string[] {
  const own = HTTP_KEY_PATTERN.test(id) ? [httpScopedId(principal.userId, id)] : [];
  const scoped = parseHttpScopedId(id);
  if (principal.role === 'admin') return [id, ...own];
  if (scoped) return scoped.userId === principal.userId ? [id] : [];
  return principal.role === 'service' ? [...own, id] : own;
}

/** A command's outcome as a poll shows it: decided once, so never a `duplicate`, however often it is read. */
function outcomeBody(principal: Principal, stored: StoredOutcome) {
  const body = {
    ...transactionBody(forCaller(principal, { ...stored.reply, duplicate: false })),
    code: stored.reply.code,
    message: stored.reply.message,
  };
  return principal.role === 'admin' ? { ...body, principal: stored.principal } : body;
}

/**
 * Another caller's Idempotency-Key is theirs alone: a user sees it in their history (the
 * sender's key on a transfer they received, the merchant's on a hold that expired) only as an
 * opaque reference. An expire's id carries the reserve's id, which is masked the same way.
 */
export function commandIdShownTo(principal: Principal, id: string, maskSecret: string): string {
  if (id.startsWith(EXPIRE_ID_PREFIX))
    return `${EXPIRE_ID_PREFIX}${commandIdShownTo(principal, id.slice(EXPIRE_ID_PREFIX.length), maskSecret)}`;
  const scoped = parseHttpScopedId(id);
  if (!scoped) return id;
  if (scoped.userId === principal.userId) return scoped.key;
  if (principal.role !== 'user') return id;
  // Keyed, not a bare hash: a user who guesses a merchant's key (order-1001) cannot confirm it
  // by hashing the guess and comparing.
  return `~other:${createHmac('sha256', maskSecret).update(`command-id-mask-v1\u001f${id}`).digest('base64url').slice(0, 16)}`;
}

/** A cursor this endpoint issued for the same sort, or a 400: anything else could reach PostgreSQL as a bad literal. */
export function validCursor(cursor: string, sort: 'date' | 'amount'): { value: string; id: number } {
  const after = decodeCursor(cursor);
  const valid =
    after !== null &&
    (sort === 'amount'
      ? /^-?[0-9]{1,19}$/.test(after.value) && BigInt(after.value) <= BIGINT_MAX && BigInt(after.value) >= -BIGINT_MAX
      : isCursorDate(after.value));
  if (!valid)
    throw new ApiError('validation_failed', 'Invalid cursor.', [
      { field: 'cursor', message: 'must be a next_cursor this endpoint returned, with the same sort' },
    ]);
  return after;
}
