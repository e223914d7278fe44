/**
 * The balance event contract (docs/events.md), written once: the JSON Schema subscribers in
 * other languages read (`npm run schemas`) and the zod schema the example subscriber and the
 * tests validate events with. src/ledger/events.ts builds the events.
 */
import { z } from 'zod';
import { EVENT_TYPES } from './command-types.ts';
import { TRANSACTION_TYPES } from './result-codes.ts';

const money = z
  .string()
  .regex(/^-?[0-9]+\.[0-9]{2}$/)
  .meta({ description: 'An exact amount with two decimals.', examples: ['10.00'] });
const id = z.number().int().min(1);

const balances = z.object({ available: money, reserved: money });

/**
 * A change of the user's balances: one per applied command that moved their money, and one per
 * freeze or unfreeze of their account (with no transactions).
 */
export const balanceChangeEventSchema = z
  .object({
    event_id: z.string().meta({ description: '`<command id>:<user id>`: the same for every copy of the event.' }),
    command_id: z.string(),
    type: z.enum(EVENT_TYPES),
    user_id: id,
    sequence: id.meta({
      description:
        "The user's balance version after the command: 1 for their first event, then one more with each. A gap means a missed event.",
    }),
    occurred_at: z.string().meta({ description: "ISO 8601: the Kafka timestamp of the command's message." }),
    transactions: z.array(
      z.object({
        transaction_type: z.enum(TRANSACTION_TYPES),
        amount: money.meta({ description: "Signed from the user's side: negative when money leaves them." }),
        service_id: id.nullable(),
        order_id: id.nullable(),
        counterparty_id: id.nullable(),
        comment: z.string().nullable(),
      }),
    ),
    balances,
  })
  .strict();

/** A threshold alert firing: the user's available balance crossed it (docs/events.md). */
export const thresholdEventSchema = z
  .object({
    event_id: z.string().meta({
      description: '`<command id>:<user id>/<alert id>`: the same for every copy of the event.',
    }),
    command_id: z.string().meta({ description: 'The command whose balance change crossed the threshold.' }),
    type: z.literal('threshold_crossed'),
    user_id: id,
    sequence: id.meta({
      description:
        'The sequence of the balance event of the same command, which comes just before it; not a sequence of its own.',
    }),
    occurred_at: z.string(),
    alert: z.object({
      alert_id: z.string().meta({ description: 'The id of the command that registered the alert.' }),
      direction: z.enum(['below', 'above']),
      threshold: money,
    }),
    balances,
  })
  .strict();

export const balanceEventSchema = z.discriminatedUnion('type', [balanceChangeEventSchema, thresholdEventSchema]);

export type BalanceEvent = z.output<typeof balanceEventSchema>;
