/**
 * The HTTP request bodies and queries, built from the same field schemas as the commands
 * (src/commands/schema.ts), so a field means the same thing on HTTP and on Kafka.
 */
import { z } from 'zod';
import { isInstant, isMonth, YEAR_MAX, YEAR_MIN } from './calendar.ts';
import {
  amountSchema,
  commandIdSchema,
  commentSchema,
  entityIdSchema,
  expiresInSchema,
  freezeReasonSchema,
  httpKeySchema,
  transferRecipientsSchema,
} from '../commands/schema.ts';
import { PASSWORD_CHARS_MAX } from '../users/passwords.ts';
import { usernameSchema } from '../users/store.ts';

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
  const order = { user_id: entityIdSchema, service_id: entityIdSchema, order_id: entityIdSchema };
  /** Query strings carry ids as text; only plain positive decimal integers are ids. */
  const idInQuery = z
    .string()
    .regex(/^[1-9][0-9]{0,15}$/, 'must be a positive integer')
    .transform(Number)
    .pipe(entityIdSchema);
  return {
    login: z.object({ username: usernameSchema, password: z.string().min(1).max(PASSWORD_CHARS_MAX) }),
    refresh: z.object({ refresh: z.string().min(1).max(4_096) }),
    addFunds: z.object({ user_id: entityIdSchema, amount, comment }),
    withdrawFunds: z.object({ user_id: entityIdSchema, amount, comment }),
    reserveFunds: z.object({ ...order, amount, comment, expires_in_s: expiresInSchema.optional() }),
    deductFunds: z.object({ ...order, amount, comment }),
    cancelReservation: z.object({ ...order, comment }),
    refundFunds: z.object({ ...order, amount, comment }),
    freezeAccount: z.object({ user_id: entityIdSchema, reason: freezeReasonSchema }),
    unfreezeAccount: z.object({ user_id: entityIdSchema, reason: freezeReasonSchema.optional() }),
    transferFunds: z
      .object({
        sender_id: entityIdSchema,
        recipient_id: entityIdSchema.optional(),
        amount: amount.optional(),
        recipients: transferRecipientsSchema(amount, limits.transferRecipientsMax).optional(),
        comment,
      })
      .superRefine((body, ctx) => {
        const single = body.recipient_id !== undefined || body.amount !== undefined;
        if (single === (body.recipients !== undefined))
          ctx.addIssue({
            code: 'custom',
            path: ['recipients'],
            message: 'give either recipient_id and amount, or recipients (a split payment)',
          });
        else if (single && (body.recipient_id === undefined || body.amount === undefined))
          ctx.addIssue({
            code: 'custom',
            path: [body.recipient_id === undefined ? 'recipient_id' : 'amount'],
            message: 'is required',
          });
        const recipients = body.recipients?.map((leg) => leg.recipient_id) ?? [body.recipient_id];
        if (recipients.includes(body.sender_id))
          ctx.addIssue({
            code: 'custom',
            path: [body.recipients ? 'recipients' : 'recipient_id'],
            message: 'must differ from sender_id',
          });
      }),
    setBalanceAlert: z
      .object({ user_id: entityIdSchema, below: amount.optional(), above: amount.optional() })
      .refine((body) => (body.below === undefined) !== (body.above === undefined), {
        path: ['below'],
        message: 'give exactly one of below and above',
      }),
    removeBalanceAlert: z.object({
      user_id: entityIdSchema,
      alert_id: z
        .string()
        .regex(
          /^(?:[A-Za-z0-9._:-]{1,100}|~http:[0-9]{1,16}:[A-Za-z0-9._:-]{1,100})$/,
          'must be the Idempotency-Key the alert was set with, or an alert id as listed',
        ),
    }),
    alertsQuery: z.object({ user_id: idInQuery }),
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
    idempotencyKey: httpKeySchema,
  };
}

export type HttpSchemas = ReturnType<typeof createHttpSchemas>;
