/**
 * Balance events: one per applied command, for the user whose balances it changed on their own
 * partition, published to the events topic (TOPIC_EVENTS) after the commit, keyed by the user.
 *
 * Everything in an event comes from the log: the command, the user's `sequence` (their balance
 * version, counted in partition order), `occurred_at` (the command message's Kafka timestamp),
 * and the balances the command left, which depend only on the user's partition. So a replay of
 * the log into an empty database makes the same events, byte for byte, and the payload stored
 * with the command is sent again, unchanged, when the command is delivered again.
 *
 * Left out on purpose: transaction ids and times (they are the database's, and differ in a
 * replay) and `incoming` (credited by transfers on other partitions, so its value at a command
 * depends on how partitions interleave; the settle's `transfer_in` event shows the arrival).
 */
import { formatMinor } from '../commands/money.ts';
import type { Command } from '../commands/schema.ts';
import type { Entry } from './core.ts';

export const EVENT_TYPES = [
  'deposit',
  'withdraw',
  'reserve',
  'capture',
  'release',
  'expire',
  'transfer_out',
  'transfer_in',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** What the event says happened: a transfer is the sender's transfer_out, its settle the recipient's transfer_in. */
export function eventTypeOf(command: Command): EventType {
  if (command.type === 'transfer') return 'transfer_out';
  if (command.type === 'settle') return 'transfer_in';
  return command.type;
}

export interface BalanceEventInput {
  readonly command: Command;
  readonly sequence: bigint;
  /** ISO 8601, from the command message's Kafka timestamp. */
  readonly occurredAt: string;
  /** The command's history rows; only the user's own are put in the event. */
  readonly entries: readonly Entry[];
  readonly balances: { readonly available: bigint; readonly reserved: bigint };
}

/** The event's JSON, keys in a fixed order, so the same input always gives the same bytes. */
export function balanceEventPayload(input: BalanceEventInput): string {
  const { command } = input;
  const userId = command.user_id;
  return JSON.stringify({
    event_id: `${command.id}:${userId}`,
    command_id: command.id,
    type: eventTypeOf(command),
    user_id: userId,
    sequence: Number(input.sequence),
    occurred_at: input.occurredAt,
    transactions: input.entries
      .filter((e) => e.userId === userId)
      .map((e) => ({
        transaction_type: e.type,
        amount: formatMinor(e.amount),
        service_id: e.serviceId,
        order_id: e.orderId,
        counterparty_id: e.counterpartyId,
        comment: e.comment,
      })),
    balances: { available: formatMinor(input.balances.available), reserved: formatMinor(input.balances.reserved) },
  });
}

/**
 * A settle carries no history row of the recipient's (the transfer wrote it), so its event
 * repeats the transfer_in row from the settle itself: what arrived, and from the settle's id.
 */
export function settleEntries(command: Extract<Command, { type: 'settle' }>): Entry[] {
  return [
    {
      userId: command.user_id,
      amount: command.amount,
      type: 'transfer_in',
      serviceId: null,
      orderId: null,
      counterpartyId: null,
      comment: null,
    },
  ];
}
