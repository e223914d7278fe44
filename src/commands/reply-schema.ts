/**
 * The reply contract, written once: the zod schema the gateway validates replies with, the
 * JSON Schema producers in other languages read (`npm run schemas`), and the TypeScript types
 * the consumer builds replies with (derived from the schema below).
 */
import { z } from 'zod';
import { RESULT_CODES, TRANSACTION_TYPES } from './result-codes.ts';

const money = z
  .string()
  .regex(/^-?[0-9]+\.[0-9]{2}$/)
  .meta({ description: 'An exact amount with two decimals.', examples: ['10.00'] });
const id = z.number().int().min(1);

export const transactionSchema = z.object({
  id,
  user_id: id,
  amount: money.meta({ description: "Signed from the user's side: negative when money leaves them." }),
  transaction_type: z.enum(TRANSACTION_TYPES),
  created_at: z.string().meta({ description: 'ISO 8601 time of the transaction.' }),
  service_id: id.nullable(),
  order_id: id.nullable(),
  counterparty_id: id.nullable(),
  comment: z.string().nullable(),
  command_id: z.string(),
});

const balanceSchema = z.object({
  available: money,
  reserved: money,
  incoming: money.optional().meta({
    description:
      "A transfer recipient's money received and not yet settled: spendable by any command sent after this reply.",
  }),
});

export const replySchema = z.object({
  command_id: z.string(),
  status: z.enum(['applied', 'rejected']),
  code: z.enum(Object.keys(RESULT_CODES) as [keyof typeof RESULT_CODES, ...Array<keyof typeof RESULT_CODES>]),
  message: z.string(),
  duplicate: z
    .boolean()
    .meta({ description: 'True when the command id was already decided: nothing was applied this time.' }),
  fingerprint: z.string().max(64).nullable().meta({
    description:
      'A hash of what the answered command does (null for a message that was not a valid command): a waiter accepts only the reply to the command it sent.',
  }),
  transactions: z.array(transactionSchema),
  balances: z.record(z.string().regex(/^[0-9]+$/), balanceSchema).meta({
    description:
      "Balances after the command, keyed by user id: the user it acted for, and a transfer's recipient (with `incoming`, the credit not yet settled).",
  }),
});

/** A row of a user's history as callers see it; amounts are exact 2-decimal strings. */
export type TransactionView = Readonly<z.output<typeof transactionSchema>>;
export type BalanceView = Readonly<z.output<typeof balanceSchema>>;
/** The outcome of a command as callers see it: on the reply topic, from polling, and (reshaped) over HTTP. */
export type CommandReply = Readonly<Omit<z.output<typeof replySchema>, 'transactions'>> & {
  readonly transactions: readonly TransactionView[];
};
