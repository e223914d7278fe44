/**
 * The command contract, shared by everything that produces or consumes commands: the gateway,
 * the typed client, the consumer and the tools. The schema of each type is in the catalog
 * (catalog.ts); this is the union of them, a command's fingerprint, key and wire form.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { CommandFields } from './catalog-spec.ts';
import { COMMAND_CATALOG } from './catalog.ts';
import { COMMAND_TYPES, type CommandType } from './command-types.ts';
import {
  AMOUNT_MINOR_CEILING,
  amountSchema,
  commandIdSchema,
  commentSchema,
  entityIdSchema,
  replyToSchema,
  TRANSFER_RECIPIENTS_CEILING,
} from './fields.ts';
import { formatMinor } from './money.ts';
import { DEFAULT_REPLY_TOPIC_POLICY, type ReplyTopicPolicy } from './reply-topics.ts';

export { COMMAND_TYPES, type CommandType } from './command-types.ts';
export * from './fields.ts';
export * from './ids.ts';

/** The fields of commands decided with `limits`, replies allowed by `replyTopics` (null: any topic). */
function commandFields(limits: { amountMinorMax: number }, replyTopics: ReplyTopicPolicy | null): CommandFields {
  return {
    base: { id: commandIdSchema, user_id: entityIdSchema, reply_to: replyToSchema(replyTopics).optional() },
    amount: amountSchema(limits.amountMinorMax),
    ceilingAmount: amountSchema(AMOUNT_MINOR_CEILING),
    comment: commentSchema.optional(),
    order: { service_id: entityIdSchema, order_id: entityIdSchema },
    recipientsMax: TRANSFER_RECIPIENTS_CEILING,
  };
}

type SchemaOf<K extends CommandType> = ReturnType<(typeof COMMAND_CATALOG)[K]['schema']>;
type AnyCommandSchema = SchemaOf<CommandType>;

export function createCommandSchema(
  limits: { amountMinorMax: number },
  replyTopics: ReplyTopicPolicy | null = DEFAULT_REPLY_TOPIC_POLICY,
) {
  const fields = commandFields(limits, replyTopics);
  const schemas = COMMAND_TYPES.map((type) => COMMAND_CATALOG[type].schema(fields)) as AnyCommandSchema[];
  return z.discriminatedUnion('type', schemas as [AnyCommandSchema, ...AnyCommandSchema[]]);
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
 * fingerprints are a reuse of the idempotency key. The fields every type may have come first;
 * what a type adds (the catalog's `fingerprint`) follows only when present, so fingerprints
 * stored before a field existed stay valid.
 */
export function commandFingerprint(command: Command): string {
  const c = command as Partial<Record<string, unknown>> & Command;
  const parts = [c.type, c.user_id, c.amount, c.service_id, c.order_id, c.recipient_id, c.comment ?? ''];
  const extras = COMMAND_CATALOG[c.type] as { fingerprint?: (c: Readonly<Record<string, unknown>>) => string[] };
  parts.push(...(extras.fingerprint?.(c) ?? []));
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
