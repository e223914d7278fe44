/**
 * The command contract, shared by everything that produces or consumes commands: the gateway,
 * the typed client, the consumer and the tools. One zod schema per command type.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { formatMinor, parseAmount } from './money.ts';
import {
  DEFAULT_REPLY_TOPIC_POLICY,
  KAFKA_TOPIC_PATTERN,
  replyTopicProblem,
  type ReplyTopicPolicy,
} from './reply-topics.ts';
import { storableText } from './text.ts';

export const COMMAND_TYPES = [
  'deposit',
  'withdraw',
  'reserve',
  'capture',
  'release',
  'transfer',
  'settle',
  'expire',
  'set_alert',
  'remove_alert',
  'refund',
  'freeze',
  'unfreeze',
] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

export const COMMENT_CHARS_MAX = 500;
/** What a Kafka producer may use as a command id. */
export const CLIENT_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** An Idempotency-Key sent over HTTP. */
export const HTTP_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,100}$/;
/**
 * The id the gateway gives a command sent over HTTP: the caller's user id and their key, so
 * two callers' keys never meet. `~` is outside client ids, so no producer collides by accident.
 */
export const HTTP_SCOPED_ID_PATTERN = /^~http:[0-9]{1,16}:[A-Za-z0-9._:-]{1,100}$/;
/** Room for 500 Cyrillic characters (2 bytes each in UTF-8), or 250 emoji (4 bytes each). */
export const COMMENT_BYTES_MAX = 1_000;
export const COMMAND_ID_PATTERN = /^(?:[A-Za-z0-9._:-]{1,128}|~http:[0-9]{1,16}:[A-Za-z0-9._:-]{1,100})$/;

/**
 * A settle is published by the consumer, never by clients: it completes a transfer on the
 * recipient's partition. Its id is derived from the transfer's, with a '~' no client id can hold.
 */
export const SETTLE_ID_PREFIX = '~settle:';
/**
 * `~settle:<transfer id>` for a transfer to one `recipient_id`; `~settle:<transfer id>#<recipient
 * id>` for each leg of a split payment (`recipients`), whose recipients are distinct.
 */
export const SETTLE_ID_PATTERN =
  /^~settle:(?:[A-Za-z0-9._:-]{1,128}|~http:[0-9]{1,16}:[A-Za-z0-9._:-]{1,100})(?:#[1-9][0-9]{0,15})?$/;
export function settleIdOf(transferId: string, legRecipientId?: number): string {
  return legRecipientId === undefined
    ? `${SETTLE_ID_PREFIX}${transferId}`
    : `${SETTLE_ID_PREFIX}${transferId}#${legRecipientId}`;
}
/** The transfer a settle completes, and the recipient of its leg when it is a split payment's. */
export function settleSourceOf(settleId: string): { transferId: string; legRecipientId: number | null } {
  const rest = settleId.slice(SETTLE_ID_PREFIX.length);
  const hash = rest.lastIndexOf('#');
  return hash < 0
    ? { transferId: rest, legRecipientId: null }
    : { transferId: rest.slice(0, hash), legRecipientId: Number(rest.slice(hash + 1)) };
}
/**
 * The most recipients one split payment may name, in any command the consumer reads. The
 * gateway's TRANSFER_RECIPIENTS_MAX (at most this) is what HTTP callers get.
 */
export const TRANSFER_RECIPIENTS_CEILING = 100;

/**
 * An expire is published by the consumer's hold-expiry sweeper, never by clients: it returns an
 * expired hold to the user. Its id is derived from the reserve command's, so every copy of it
 * (two sweeps, two consumers) is one command.
 */
export const EXPIRE_ID_PREFIX = '~expire:';
export const EXPIRE_ID_PATTERN = /^~expire:(?:[A-Za-z0-9._:-]{1,128}|~http:[0-9]{1,16}:[A-Za-z0-9._:-]{1,100})$/;
export function expireIdOf(reserveCommandId: string): string {
  return `${EXPIRE_ID_PREFIX}${reserveCommandId}`;
}
/** The longest hold a reserve may ask for: 31 days. */
export const HOLD_EXPIRES_IN_S_MAX = 2_678_400;
export const expiresInSchema = z
  .number()
  .int()
  .min(1)
  .max(HOLD_EXPIRES_IN_S_MAX)
  .meta({ description: 'Seconds after the reserve is applied when the hold returns to available by itself.' });

/**
 * A threshold alert fires when the user's available balance crosses `threshold`: `below` when it
 * drops under it, `above` when it rises over it (docs/events.md).
 */
export const ALERT_DIRECTIONS = ['below', 'above'] as const;
export type AlertDirection = (typeof ALERT_DIRECTIONS)[number];
export const alertDirectionSchema = z.enum(ALERT_DIRECTIONS);

/** The idempotency key: a UUID or 1-128 characters of [A-Za-z0-9._:-], or an id the gateway scoped. */
export const commandIdSchema = z.string().regex(COMMAND_ID_PATTERN, 'must be 1-128 characters of A-Z a-z 0-9 . _ : -');
export const httpKeySchema = z.string().regex(HTTP_KEY_PATTERN, 'must be 1-100 characters of A-Z a-z 0-9 . _ : -');

export function httpScopedId(userId: number, key: string): string {
  return `~http:${userId}:${key}`;
}

/** The user an HTTP-scoped id belongs to, and the key it carries; null for any other id. */
export function parseHttpScopedId(id: string): { userId: number; key: string } | null {
  if (!HTTP_SCOPED_ID_PATTERN.test(id)) return null;
  const [, userId, ...key] = id.split(':');
  return { userId: Number(userId), key: key.join(':') };
}
/** User, service and order ids: positive integers that a JSON number holds exactly. */
export const entityIdSchema = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
export const commentSchema = storableText({ charsMax: COMMENT_CHARS_MAX, bytesMax: COMMENT_BYTES_MAX });
/** Why an admin froze (or unfroze) an account: kept with the change, shown to services and admins. */
export const freezeReasonSchema = storableText({
  charsMax: COMMENT_CHARS_MAX,
  bytesMax: COMMENT_BYTES_MAX,
  charsMin: 1,
}).meta({ description: 'Why: kept with the change in account_freezes and shown to services and admins.' });

/**
 * The largest amount any command may carry on the wire: what a JSON number holds exactly. The
 * configured AMOUNT_MINOR_MAX is a rule of the decision (`amount_too_large`), not of the schema,
 * so a limit changed between the live run and a replay cannot turn a command into a dead letter.
 */
export const AMOUNT_MINOR_CEILING = Number.MAX_SAFE_INTEGER;

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

/**
 * The legs of a split payment: 1 to `recipientsMax` distinct recipients, each with an amount and
 * an optional comment (the command's comment otherwise).
 */
export function transferRecipientsSchema(amount: ReturnType<typeof amountSchema>, recipientsMax: number) {
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

export function createCommandSchema(
  limits: { amountMinorMax: number },
  replyTopics: ReplyTopicPolicy | null = DEFAULT_REPLY_TOPIC_POLICY,
) {
  const amount = amountSchema(limits.amountMinorMax);
  const base = { id: commandIdSchema, user_id: entityIdSchema, reply_to: replyToSchema(replyTopics).optional() };
  const order = { service_id: entityIdSchema, order_id: entityIdSchema };
  return z.discriminatedUnion('type', [
    z.object({ ...base, type: z.literal('deposit'), amount, comment: commentSchema.optional() }),
    z.object({ ...base, type: z.literal('withdraw'), amount, comment: commentSchema.optional() }),
    z.object({
      ...base,
      type: z.literal('reserve'),
      ...order,
      amount,
      comment: commentSchema.optional(),
      expires_in_s: expiresInSchema.optional(),
    }),
    z.object({ ...base, type: z.literal('capture'), ...order, amount, comment: commentSchema.optional() }),
    z.object({ ...base, type: z.literal('release'), ...order, comment: commentSchema.optional() }),
    z.object({ ...base, type: z.literal('refund'), ...order, amount, comment: commentSchema.optional() }).meta({
      description:
        "Gives back money of a captured order: from the service's revenue to the user's available balance. Refunds of an order add up to at most what was captured.",
    }),
    z.object({ ...base, type: z.literal('freeze'), reason: freezeReasonSchema }).meta({
      description:
        "Freezes the user's account: withdrawals, transfers out and new reserves are rejected with account_frozen until an unfreeze; money still arrives.",
    }),
    z
      .object({ ...base, type: z.literal('unfreeze'), reason: freezeReasonSchema.optional() })
      .meta({ description: "Ends a freeze of the user's account." }),
    z
      .object({
        ...base,
        type: z.literal('transfer'),
        recipient_id: entityIdSchema.optional(),
        amount: amount.optional(),
        recipients: transferRecipientsSchema(amount, TRANSFER_RECIPIENTS_CEILING).optional(),
        comment: commentSchema.optional(),
      })
      .superRefine((transfer, ctx) => {
        const single = transfer.recipient_id !== undefined || transfer.amount !== undefined;
        if (single === (transfer.recipients !== undefined) || (single && transfer.amount === undefined))
          ctx.addIssue({
            code: 'custom',
            path: ['recipients'],
            message: 'give either recipient_id and amount, or recipients (a split payment)',
          });
        else if (single && transfer.recipient_id === undefined)
          ctx.addIssue({ code: 'custom', path: ['recipient_id'], message: 'is required with amount' });
      })
      .meta({
        description:
          'Moves money from the sender (user_id) to one recipient (recipient_id, amount), or to several at once (recipients: a split payment, debited in one decision or not at all).',
      }),
    z.object({ ...base, type: z.literal('set_alert'), direction: alertDirectionSchema, threshold: amount }).meta({
      description:
        "Registers a threshold alert on the user's available balance; its id is this command's id (docs/events.md).",
    }),
    z
      .object({ ...base, type: z.literal('remove_alert'), alert_id: commandIdSchema })
      .meta({ description: 'Removes the threshold alert that the command with id `alert_id` registered.' }),
    z
      // Not bounded by AMOUNT_MINOR_MAX: the transfer was, and a limit lowered between the two
      // must not strand the money in incoming.
      .object({
        id: z.string().regex(SETTLE_ID_PATTERN, 'must be ~settle: followed by the transfer id'),
        type: z.literal('settle'),
        user_id: entityIdSchema,
        amount: amountSchema(AMOUNT_MINOR_CEILING),
      })
      .meta({
        description:
          "Published by the consumer after a transfer: moves the amount from the recipient's incoming to their available balance.",
      }),
    z
      .object({
        id: z.string().regex(EXPIRE_ID_PATTERN, 'must be ~expire: followed by the reserve command id'),
        type: z.literal('expire'),
        user_id: entityIdSchema,
        ...order,
      })
      .meta({
        description:
          'Published by the consumer once a hold passed its expires_in_s: returns the hold the reserve command (named by the id) opened, if it is still open.',
      }),
  ]);
}

export type CommandSchema = ReturnType<typeof createCommandSchema>;

/**
 * The schema the consumer (and a replay) reads the command topic with: neither the configured
 * amount limit nor the reply-topic policy decides validity there, so no setting changed
 * between a live run and a replay can turn an applied command into a dead letter.
 */
export function consumerCommandSchema(): CommandSchema {
  return createCommandSchema({ amountMinorMax: AMOUNT_MINOR_CEILING }, null);
}
/** A validated command; `amount` is in minor units. */
export type Command = z.output<CommandSchema>;
/** What a producer writes on the topic; `amount` may be a string or a number. */
export type CommandInput = z.input<CommandSchema>;

/**
 * A hash of what the command does, not of how it was spelled: "10.5" and 10.50 give the same
 * fingerprint, and `reply_to` does not count. Two commands with one id and different
 * fingerprints are a reuse of the idempotency key.
 */
export function commandFingerprint(command: Command): string {
  const c = command as Partial<Record<string, unknown>> & Command;
  const parts = [c.type, c.user_id, c.amount, c.service_id, c.order_id, c.recipient_id, c.comment ?? ''];
  // Appended only when present, so the fingerprints of commands without it stay as they were.
  if (c.expires_in_s !== undefined) parts.push(`expires_in_s=${c.expires_in_s}`);
  if (c.type === 'set_alert') parts.push(`direction=${c.direction}`, `threshold=${c.threshold}`);
  if (c.type === 'remove_alert') parts.push(`alert_id=${c.alert_id}`);
  if ((c.type === 'freeze' || c.type === 'unfreeze') && c.reason !== undefined) parts.push(`reason=${c.reason}`);
  if (c.type === 'transfer' && c.recipients)
    parts.push(
      // A leg without a comment takes the transfer's: not the same as an empty one.
      `recipients=${c.recipients.map((l) => `${l.recipient_id}:${l.amount}:${l.comment === undefined ? '-' : `=${l.comment}`}`).join('\u001e')}`,
    );
  return createHash('sha256')
    .update(parts.map((part) => String(part ?? '')).join('\u001f'))
    .digest('base64url')
    .slice(0, 32);
}

/** The partition key of a command: the user whose order matters (the sender of a transfer). */
export function commandKey(command: { user_id: number }): string {
  return String(command.user_id);
}

/** The JSON a validated command is published as: the amount back as an exact decimal string. */
export function serializeCommand(command: Command): string {
  return JSON.stringify(command, (key, value: unknown) =>
    (key === 'amount' || key === 'threshold') && typeof value === 'bigint' ? formatMinor(value) : value,
  );
}
