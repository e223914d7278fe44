/**
 * The fields commands are made of, each with its rules, shared by the command schemas (Kafka),
 * the HTTP bodies and the OpenAPI document: a field means the same thing wherever it appears.
 */
import { z } from 'zod';
import { COMMAND_ID_PATTERN, HTTP_KEY_CHARS_MAX, HTTP_KEY_PATTERN, CLIENT_ID_CHARS_MAX } from './ids.ts';
import { parseAmount } from './money.ts';
import { KAFKA_TOPIC_PATTERN, replyTopicProblem, type ReplyTopicPolicy } from './reply-topics.ts';
import { storableText } from './text.ts';

export const COMMENT_CHARS_MAX = 500;
/** The longest payment provider reference a deposit or withdrawal may carry. */
export const EXTERNAL_REF_CHARS_MAX = 100;
/**
 * A payment provider's id for the money (pi_3N..., a bank's payout id): unique per service and
 * user, so a provider's webhook delivered twice under two idempotency keys is refused the second time.
 */
export const externalRefSchema = z
  .string()
  .regex(
    new RegExp(`^[A-Za-z0-9._:/-]{1,${EXTERNAL_REF_CHARS_MAX}}$`),
    `must be 1-${EXTERNAL_REF_CHARS_MAX} characters of A-Z a-z 0-9 . _ : / -`,
  )
  .meta({ description: "The payment provider's reference; unique per service and user (needs service_id)." });
/** Room for 500 Cyrillic characters (2 bytes each in UTF-8), or 250 emoji (4 bytes each). */
export const COMMENT_BYTES_MAX = 1_000;
/**
 * The most recipients one split payment may name, in any command the consumer reads. The
 * gateway's TRANSFER_RECIPIENTS_MAX (at most this) is what HTTP callers get.
 */
export const TRANSFER_RECIPIENTS_CEILING = 100;
/** The longest hold a reserve may ask for: 31 days. */
export const HOLD_EXPIRES_IN_S_MAX = 2_678_400;
/**
 * The largest amount any command may carry on the wire: what a JSON number holds exactly. The
 * configured AMOUNT_MINOR_MAX is a rule of the decision (`amount_too_large`), not of the schema,
 * so a limit changed between the live run and a replay cannot turn a command into a dead letter.
 */
export const AMOUNT_MINOR_CEILING = Number.MAX_SAFE_INTEGER;

/**
 * A threshold alert fires when the user's available balance crosses `threshold`: `below` when it
 * drops under it, `above` when it rises over it (docs/events.md).
 */
export const ALERT_DIRECTIONS = ['below', 'above'] as const;
export type AlertDirection = (typeof ALERT_DIRECTIONS)[number];
export const alertDirectionSchema = z.enum(ALERT_DIRECTIONS);

/** The idempotency key: a UUID or 1-128 characters of [A-Za-z0-9._:-], or an id the gateway scoped. */
export const commandIdSchema = z
  .string()
  .regex(COMMAND_ID_PATTERN, `must be 1-${CLIENT_ID_CHARS_MAX} characters of A-Z a-z 0-9 . _ : -`);
export const httpKeySchema = z
  .string()
  .regex(HTTP_KEY_PATTERN, `must be 1-${HTTP_KEY_CHARS_MAX} characters of A-Z a-z 0-9 . _ : -`);
/** User, service and order ids: positive integers that a JSON number holds exactly. */
export const entityIdSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
export const commentSchema = storableText({ charsMax: COMMENT_CHARS_MAX, bytesMax: COMMENT_BYTES_MAX });
/** Why an admin froze (or unfroze) an account: kept with the change, shown to services and admins. */
export const freezeReasonSchema = storableText({
  charsMax: COMMENT_CHARS_MAX,
  bytesMax: COMMENT_BYTES_MAX,
  charsMin: 1,
}).meta({ description: 'Why: kept with the change in account_freezes and shown to services and admins.' });
export const expiresInSchema = z
  .number()
  .int()
  .min(1)
  .max(HOLD_EXPIRES_IN_S_MAX)
  .meta({ description: 'Seconds after the reserve is applied when the hold returns to available by itself.' });

/**
 * A `reply_to` the policy allows: never the command, dead-letter or an internal topic. With no
 * policy (the consumer's schema), any topic name: where a reply may go is decided when it is
 * sent, so it never decides whether the command applies.
 */
export function replyToSchema(policy: ReplyTopicPolicy | null) {
  if (policy === null) return z.string().regex(KAFKA_TOPIC_PATTERN, 'must be a Kafka topic name');
  return z.string().superRefine((topic, ctx) => {
    const problem = replyTopicProblem(topic, policy);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });
}

/** A positive amount as a decimal string or number, parsed exactly to minor units. */
export function amountSchema(amountMinorMax: number) {
  const max = BigInt(amountMinorMax);
  return z
    .union([z.string(), z.number()])
    .meta({
      description: 'A positive amount with at most 2 decimals, as a decimal string (preferred) or a number.',
      examples: ['10.00'],
    })
    .transform((input, ctx) => {
      const parsed = parseAmount(input, max);
      if (parsed.ok) return parsed.minor;
      ctx.addIssue({ code: 'custom', message: parsed.message });
      return z.NEVER;
    });
}
export type AmountSchema = ReturnType<typeof amountSchema>;

/**
 * The legs of a split payment: 1 to `recipientsMax` distinct recipients, each with an amount and
 * an optional comment (the command's comment otherwise).
 */
export function transferRecipientsSchema(amount: AmountSchema, recipientsMax: number) {
  return z
    .array(z.object({ recipient_id: entityIdSchema, amount, comment: commentSchema.optional() }))
    .min(1)
    .max(recipientsMax)
    .superRefine((legs, ctx) => {
      const seen = new Set<number>();
      for (const [i, leg] of legs.entries()) {
        if (seen.has(leg.recipient_id))
          ctx.addIssue({ code: 'custom', path: [i, 'recipient_id'], message: 'names a recipient twice' });
        seen.add(leg.recipient_id);
      }
    });
}

/** A transfer names one recipient (recipient_id and amount), or several (recipients), never both. */
export function oneRecipientOrLegs(
  transfer: { recipient_id?: number; amount?: bigint; recipients?: readonly unknown[] },
  ctx: z.RefinementCtx,
): void {
  const single = transfer.recipient_id !== undefined || transfer.amount !== undefined;
  if (single === (transfer.recipients !== undefined) || (single && transfer.amount === undefined))
    ctx.addIssue({
      code: 'custom',
      path: ['recipients'],
      message: 'give either recipient_id and amount, or recipients (a split payment)',
    });
  else if (single && transfer.recipient_id === undefined)
    ctx.addIssue({ code: 'custom', path: ['recipient_id'], message: 'is required with amount' });
}

/** What a split payment's fingerprint adds: each leg. A leg without a comment takes the transfer's: not the same as an empty one. */
export function legsFingerprint(command: Readonly<Record<string, unknown>>): string[] {
  const legs = command.recipients as Array<{ recipient_id: number; amount: bigint; comment?: string }> | undefined;
  if (!legs) return [];
  const leg = (l: (typeof legs)[number]) =>
    `${l.recipient_id}:${l.amount}:${l.comment === undefined ? '-' : `=${l.comment}`}`;
  return [`recipients=${legs.map(leg).join('\u001e')}`];
}
