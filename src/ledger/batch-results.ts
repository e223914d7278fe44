/**
 * The replies of a batch (apply-batch.ts), once it is written: each command's transactions (its
 * own, or a repeat's as stored), the balances it reports (a transfer's recipients read without
 * locking), its balance events, and the settles to publish.
 */
import type pg from 'pg';
import { legsOf } from './core.ts';
import type { ItemOutcome } from './decide-batch.ts';
import { formatMinor } from '../commands/money.ts';
import { balanceView, transactionView, type BalanceView, type CommandReply, type TransactionView } from './outcome.ts';
import { replyFor } from './replies.ts';
import * as store from './store/index.ts';
import type { BatchResult } from './apply-batch.ts';

export type { BatchItem } from './decide-batch.ts';

export function rowView(row: store.TransactionRow, id: number, writtenAt: Date): TransactionView {
  return transactionView({
    id,
    command_id: row.commandId,
    user_id: row.userId,
    amount: row.amount,
    transaction_type: row.type,
    service_id: row.serviceId,
    order_id: row.orderId,
    counterparty_id: row.counterpartyId,
    comment: row.comment,
    created_at: writtenAt,
  });
}

export function groupByCommand(views: readonly TransactionView[]): Map<string, TransactionView[]> {
  const byCommand = new Map<string, TransactionView[]>();
  for (const view of views) {
    const list = byCommand.get(view.command_id);
    if (list) list.push(view);
    else byCommand.set(view.command_id, [view]);
  }
  return byCommand;
}

/**
 * The recipients of the transfers a batch applied (or repeats of ones applied): their balances,
 * as the batch's write leaves them, go into the replies. Read by the write without locking the
 * recipients' rows (this batch does not decide on them, and locking them would make partitions
 * wait on each other), so their available money may move on at once.
 */
export function recipientsOf(outcomes: readonly ItemOutcome[]): number[] {
  const ids = new Set<number>();
  for (const outcome of outcomes) {
    const { command } = outcome.item;
    const applied =
      outcome.kind === 'new'
        ? outcome.decision.status === 'applied'
        : outcome.kind === 'repeat' && outcome.prior.status === 'applied';
    if (command.type === 'transfer' && applied) for (const leg of legsOf(command)) ids.add(leg.recipientId);
  }
  return [...ids];
}

/** The recipients' balances as the write reported them: the credit is in `incoming` until settled. */
export function recipientBalances(reported: store.CommittedChunk['reported']): Map<number, BalanceView> {
  const ids = new Set(reported.map((r) => r.userId));
  return new Map(
    [...ids].map((id) => {
      const of = (kind: string) => reported.find((r) => r.userId === id && r.kind === kind)?.balance ?? 0n;
      return [
        id,
        { ...balanceView(of('user_available'), of('user_reserved')), incoming: formatMinor(of('user_incoming')) },
      ];
    }),
  );
}

export function withRecipient(
  reply: CommandReply,
  outcome: ItemOutcome,
  recipients: ReadonlyMap<number, BalanceView>,
): CommandReply {
  const { command } = outcome.item;
  if (command.type !== 'transfer') return reply;
  const balances = { ...reply.balances };
  for (const { recipientId } of legsOf(command)) {
    const recipient = recipients.get(recipientId);
    if (recipient) balances[String(recipientId)] = recipient;
  }
  return { ...reply, balances };
}

export async function buildResult(
  db: pg.PoolClient | pg.Pool,
  outcomes: readonly ItemOutcome[],
  created: Map<string, TransactionView[]>,
  freshEvents: ReadonlyMap<string, store.BalanceEventRow[]>,
  committed: store.CommittedChunk,
): Promise<BatchResult> {
  // Repeats of commands decided in an earlier batch answer with their stored transactions.
  const storedIds = outcomes
    .filter((o) => o.kind === 'repeat' && !created.has(o.item.command.id))
    .map((o) => o.item.command.id);
  const previous = groupByCommand(
    (await store.transactionsOfCommands(db, [...new Set(storedIds)])).map(transactionView),
  );
  const recipients = recipientBalances(committed.reported);
  const events = await eventsOf(db, outcomes, freshEvents);
  const settleLegs = await settleLegsOf(db, outcomes);
  const replies = outcomes.map((outcome) => withRecipient(replyFor(outcome, created, previous), outcome, recipients));
  return {
    replies,
    events: outcomes.map((o) => events.get(o.item.command.id) ?? []),
    settleLegs: outcomes.map((o) => settleLegs.get(o) ?? []),
  };
}

/**
 * The legs whose settles each outcome publishes: all of a transfer applied by this batch, and
 * of a repeat of one decided earlier, those still in flight. A repeat of a transfer this same
 * batch applied publishes none: the first copy's settles are in this batch's outbox.
 */
export async function settleLegsOf(
  db: pg.PoolClient | pg.Pool,
  outcomes: readonly ItemOutcome[],
): Promise<Map<ItemOutcome, number[]>> {
  const legs = new Map<ItemOutcome, number[]>();
  const appliedNow = new Set<string>();
  const repeats: ItemOutcome[] = [];
  for (const outcome of outcomes) {
    const { command } = outcome.item;
    if (command.type !== 'transfer') continue;
    if (outcome.kind === 'new' && outcome.decision.status === 'applied') {
      appliedNow.add(command.id);
      legs.set(
        outcome,
        legsOf(command).map((leg) => leg.recipientId),
      );
    } else if (outcome.kind === 'repeat' && outcome.prior.status === 'applied') repeats.push(outcome);
  }
  const earlier = repeats.filter((o) => !appliedNow.has(o.item.command.id));
  const inFlight = await store.legsInFlight(db, [...new Set(earlier.map((o) => o.item.command.id))]);
  for (const outcome of earlier) legs.set(outcome, inFlight.get(outcome.item.command.id) ?? []);
  return legs;
}

/**
 * The events to publish for each command: a new one's, and a repeat's as stored, so a command
 * delivered again (after a crash before its offset was committed) sends the same bytes again.
 */
export async function eventsOf(
  db: pg.PoolClient | pg.Pool,
  outcomes: readonly ItemOutcome[],
  freshEvents: ReadonlyMap<string, store.BalanceEventRow[]>,
): Promise<Map<string, store.BalanceEventRow[]>> {
  const events = new Map(freshEvents);
  const repeated = outcomes
    .filter((o) => o.kind === 'repeat' && o.prior.status === 'applied' && !events.has(o.item.command.id))
    .map((o) => o.item.command.id);
  for (const row of await store.balanceEventsOfCommands(db, [...new Set(repeated)])) {
    const list = events.get(row.commandId);
    if (list) list.push(row);
    else events.set(row.commandId, [row]);
  }
  return events;
}
