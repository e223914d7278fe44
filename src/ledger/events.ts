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
import { COMMAND_CATALOG } from '../commands/catalog.ts';
import type { EventType } from '../commands/command-types.ts';
import type { Command } from '../commands/schema.ts';
import type { Alert, Entry } from './core.ts';

/** An alert firing: the same sequence as the balance event of the command that crossed it. */
export const THRESHOLD_EVENT_TYPE = 'threshold_crossed';

/**
 * What the event says happened: a transfer is the sender's transfer_out, its settle the
 * recipient's transfer_in. Alert registrations change no balance and make no balance event; a
 * freeze or unfreeze changes no balance either, but changes what the account may do, so it has one.
 */
export function eventTypeOf(command: Command): EventType {
  const type = COMMAND_CATALOG[command.type].eventType;
  if (type === null) throw new Error(`${command.type} changes no balance and has no balance event`);
  return type;
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
 * The event of an alert that `command` fired: the command's balance event's sequence and
 * balances, and the alert (its id is the id of the command that registered it).
 */
export function thresholdEventPayload(input: Omit<BalanceEventInput, 'entries'> & { readonly alert: Alert }): string {
  const { command, alert } = input;
  return JSON.stringify({
    // '/' is in no command id, so this never reads as another event's id.
    event_id: `${command.id}:${alert.userId}/${alert.id}`,
    command_id: command.id,
    type: THRESHOLD_EVENT_TYPE,
    user_id: alert.userId,
    sequence: Number(input.sequence),
    occurred_at: input.occurredAt,
    alert: { alert_id: alert.id, direction: alert.direction, threshold: formatMinor(alert.threshold) },
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
