/**
 * The HTTP request bodies and queries, built from the same field schemas as the commands
 * (src/commands/schema.ts), so a field means the same thing on HTTP and on Kafka.
 */
import { z } from 'zod';
import { isInstant, isMonth, YEAR_MAX, YEAR_MIN } from './calendar.ts';
import { COMMAND_CATALOG } from '../commands/catalog.ts';
import type { CommandFields } from '../commands/catalog-spec.ts';
import { CLIENT_COMMAND_TYPES, type ClientCommandType } from '../commands/command-types.ts';
import { amountSchema, commandIdSchema, commentSchema, entityIdSchema, replyToSchema } from '../commands/schema.ts';
import { PASSWORD_CHARS_MAX } from '../users/passwords.ts';
import { usernameSchema } from '../users/store.ts';

/** The most results one page of `GET /api/reconciliations/<id>` holds (its CSV has them all). */
export const RECONCILIATION_RESULTS_PER_PAGE_MAX = 10_000;
/** The most links one page of `GET /api/balances/chain/` holds. */
export const CHAIN_LINKS_PER_PAGE_MAX = 1_000;

/**
 * An instant: ISO 8601 date and time with seconds and an offset (`Z` or `+03:00`), at most six
 * fraction digits (PostgreSQL keeps microseconds). Impossible dates (February 30) and years
 * outside 1970-9999 are refused (calendar.ts).
 */
export const instantSchema = z
  .string()
  .max(40)
  .refine(isInstant, 'must be an ISO 8601 instant with seconds and an offset, like 2026-11-28T10:00:00Z');

/** A calendar month, YYYY-MM, from 1970 to 9999. */
const month = z.string().max(7).refine(isMonth, `must be YYYY-MM, from ${YEAR_MIN}-01 to ${YEAR_MAX}-12`);

export function createHttpSchemas(limits: {
  amountMinorMax: number;
  pageItemsMax: number;
  statementRowsMax: number;
  transferRecipientsMax: number;
  bulkCommandsMax: number;
}) {
  const amount = amountSchema(limits.amountMinorMax);
  const comment = commentSchema.optional();
  /** Query strings carry ids as text; only plain positive decimal integers are ids. */
  const idInQuery = z
    .string()
    .regex(/^[1-9][0-9]{0,15}$/, 'must be a positive integer')
    .transform(Number)
    .pipe(entityIdSchema);
  return {
    login: z.object({ username: usernameSchema, password: z.string().min(1).max(PASSWORD_CHARS_MAX) }),
    refresh: z.object({ refresh: z.string().min(1).max(4_096) }),
    /** Each client command's HTTP body, from its catalog entry, with the amount limit and recipients bound of HTTP. */
    commandBodies: commandBodies({
      base: { id: commandIdSchema, user_id: entityIdSchema, reply_to: replyToSchema(null).optional() },
      amount,
      ceilingAmount: amount,
      comment,
      order: { service_id: entityIdSchema, order_id: entityIdSchema },
      recipientsMax: limits.transferRecipientsMax,
    }),
    alertsQuery: z.object({ user_id: idInQuery }),
    proofQuery: z.object({ user_id: idInQuery }),
    reconciliationQuery: z.object({
      service_id: idInQuery,
      amount_tolerance: z
        .string()
        .regex(/^[0-9]{1,7}(\.[0-9]{1,2})?$/, 'must be a decimal like 0.50')
        .optional(),
      time_drift_s: z
        .string()
        .regex(/^[0-9]{1,7}$/, 'must be a whole number of seconds')
        .transform(Number)
        .pipe(
          z
            .number()
            .int()
            .min(0)
            .max(30 * 86_400),
        )
        .optional(),
      map: z.string().max(500).optional(),
      rerun: z.enum(['true', 'false']).optional(),
    }),
    reconciliationParams: z.object({ id: z.uuid() }),
    reconciliationResultsQuery: z.object({
      format: z.enum(['json', 'csv']).optional(),
      after: z
        .string()
        .regex(/^[0-9]{1,9}$/, 'must be a whole number')
        .transform(Number)
        .optional(),
      limit: z
        .string()
        .regex(/^[0-9]{1,6}$/, 'must be a whole number')
        .transform(Number)
        .pipe(z.number().int().min(1).max(RECONCILIATION_RESULTS_PER_PAGE_MAX))
        .optional(),
    }),
    chainQuery: z.object({
      user_id: idInQuery,
      after_version: z
        .string()
        .regex(/^[0-9]{1,18}$/, 'must be a whole number')
        .default('0'),
      limit: z
        .string()
        .regex(/^[0-9]{1,6}$/, 'must be a whole number')
        .transform(Number)
        .pipe(z.number().int().min(1).max(CHAIN_LINKS_PER_PAGE_MAX))
        .optional(),
    }),
    balanceQuery: z
      .object({
        user_id: idInQuery,
        at: instantSchema.optional(),
        currency: z
          .string()
          .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code, like USD')
          .optional(),
      })
      .refine((query) => query.at === undefined || query.currency === undefined, {
        path: ['currency'],
        message: 'cannot be combined with at: a past balance is shown in roubles only',
      }),
    historyQuery: z.object({
      user_id: idInQuery,
      sort: z.enum(['date', 'amount']).default('date'),
      order: z.enum(['asc', 'desc']).default('desc'),
      limit: z
        .string()
        .regex(/^[0-9]{1,6}$/, 'must be a whole number')
        .transform(Number)
        .pipe(z.number().int().min(1).max(limits.pageItemsMax))
        .optional(),
      cursor: z.string().max(512).optional(),
    }),
    revenueQuery: z.object({ month }),
    statementQuery: z.object({
      user_id: idInQuery,
      month,
      limit: z
        .string()
        .regex(/^[0-9]{1,6}$/, 'must be a whole number')
        .transform(Number)
        .pipe(z.number().int().min(1).max(limits.statementRowsMax))
        .optional(),
      cursor: z.string().max(512).optional(),
      format: z.enum(['json', 'csv']).optional(),
    }),
    commandParams: z.object({ id: commandIdSchema }),
    // Each item is validated on its own (routes/bulk.ts), so a bad one does not block the others.
    bulk: z.object({
      commands: z
        .array(
          // Anything: a bad item is reported in its own entry, not as a refusal of the bulk.
          z.unknown().meta({ description: 'A command: `type`, `idempotency_key`, and the body of its endpoint.' }),
        )
        .min(1)
        .max(limits.bulkCommandsMax),
    }),
    bulkParams: z.object({ id: z.uuid() }),
  };
}

function commandBodies(fields: CommandFields) {
  return Object.fromEntries(
    CLIENT_COMMAND_TYPES.map((type) => [type, COMMAND_CATALOG[type].http.body(fields)]),
  ) as Record<ClientCommandType, z.ZodType>;
}

export type HttpSchemas = ReturnType<typeof createHttpSchemas>;
