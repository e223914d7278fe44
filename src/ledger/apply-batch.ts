/**
 * Applies a batch of commands inside the caller's PostgreSQL transaction: load (and lock) what
 * the batch needs, decide it with the pure rules, write everything back set-based, and return
 * one reply per command. The command rows are written in the same transaction as the postings,
 * which is what makes a redelivered command a no-op: exactly once in effect.
 */
import type pg from 'pg';
import { COMMAND_CATALOG } from '../commands/catalog.ts';
import type { Command } from '../commands/schema.ts';
import { inTransaction } from '../db/pool.ts';
import {
  accountsOf,
  available,
  isBoundedAccount,
  isStripedAccount,
  legsOf,
  parseAccountKey,
  reserved,
  usersOf,
  type AccountKey,
  type LedgerLimits,
} from './core.ts';
import { decideBatch, defaultMessage, type BatchItem, type ItemOutcome } from './decide-batch.ts';
import { formatMinor } from '../commands/money.ts';
import { balanceView, transactionView, type BalanceView, type CommandReply, type TransactionView } from './outcome.ts';
import { balanceEventPayload, settleEntries, thresholdEventPayload } from './events.ts';
import { replyFor } from './replies.ts';
import { LedgerState } from './state.ts';
import * as store from './store/index.ts';

export type { BatchItem } from './decide-batch.ts';

export interface BatchResult {
  readonly replies: CommandReply[];
  /** Client commands applied; settles (derived by the consumer) are counted apart. */
  readonly applied: number;
  readonly settled: number;
  readonly rejected: number;
  readonly duplicates: number;
  /** Per command, in the order of `replies`: the balance events to publish (none if rejected). */
  readonly events: ReadonlyArray<readonly store.BalanceEventRow[]>;
  /**
   * Per command, in the order of `replies`: the recipients whose settles to publish. Every leg of
   * a transfer applied now; of a repeat, only the legs whose credit is still in flight (none once
   * their settles are in the log), so a resent split payment writes no settle twice.
   */
  readonly settleLegs: ReadonlyArray<readonly number[]>;
}

/**
 * The ledger's one way in for writes: creates the accounts other partitions may be creating too,
 * then applies the batch in one transaction. Throws what PostgreSQL throws; the caller decides
 * what to retry.
 */
export async function applyCommands(
  pool: pg.Pool,
  items: readonly BatchItem[],
  limits: LedgerLimits,
): Promise<BatchResult> {
  const shared = sharedAccountsOf(items);
  if (shared.length > 0) await store.createMissingAccounts(pool, shared);
  return inTransaction(pool, (db) => applyBatch(db, items, limits));
}

/**
 * Records a command the database refused as rejected with `unprocessable`, so a redelivery or a
 * replay answers the same way and never tries it again. False if the id was decided meanwhile.
 */
export async function recordUnprocessable(pool: pg.Pool, item: BatchItem, message: string): Promise<boolean> {
  const { command } = item;
  return store.insertCommandIfNew(pool, {
    id: command.id,
    fingerprint: item.fingerprint,
    type: command.type,
    userId: command.user_id,
    status: 'rejected',
    code: 'unprocessable',
    message,
    partition: item.partition,
    offset: item.offset,
    principal: item.principal,
  });
}

/**
 * Accounts other partitions may create at the same time: recipients' incoming and services'
 * revenue accounts (a user's own accounts are only ever created from that user's partition,
 * and the external account exists from the start). See `createMissingAccounts`.
 */
function sharedAccountsOf(items: readonly BatchItem[]): AccountKey[] {
  return [...new Set(items.flatMap((item) => accountsToLoad(item.command)))].filter(
    (key) => !isBoundedAccount(key) && !isStripedAccount(key),
  );
}

export async function applyBatch(
  db: pg.PoolClient,
  items: readonly BatchItem[],
  limits: LedgerLimits,
): Promise<BatchResult> {
  const commands = items.map((item) => item.command);
  const { stored, accounts, reservations, alerts } = await store.loadChunk(db, {
    commandIds: [...new Set(commands.map((c) => c.id))],
    accounts: commands.flatMap(accountsToLoad),
    stripe: batchStripe(items),
    orders: ordersOf(commands),
  });
  const state = new LedgerState(
    [...accounts.values()].map((a) => [a.key, a.balance] as const),
    reservations.open,
    reservations.expired,
    alerts,
    { captured: reservations.captured, frozen: frozenUsers(accounts) },
  );
  const outcomes = decideBatch(state, items, stored, limits);
  const versions = nextVersions(outcomes, accounts);
  const rows = outcomeRows(outcomes, accounts, state, versions.byCommand);
  // An event's time is its message's Kafka timestamp; this clock only stands in for a missing
  // or impossible one (messageTimeMs null).
  const eventRows = balanceEvents(outcomes, versions.byCommand, state, new Date());
  const written = await store.writeChunk(db, {
    ...rows,
    reservations: state.changedReservations,
    alerts: state.alertChanges(),
    balances: withVersions(state, accounts, versions.byUser),
    events: eventRows,
    partition: items[0]?.partition ?? null,
  });
  await store.writeRefunds(db, state.refunds());
  await store.writeFreezes(db, freezeWrite(state, accounts, items, written.writtenAt));
  const created = groupByCommand(
    rows.transactions.map((row, i) => rowView(row, written.transactionIds[i]!, written.writtenAt)),
  );
  return buildResult(db, outcomes, created, groupEvents(eventRows));
}

/**
 * The stripe of the batch's external and revenue accounts: the partition it was consumed from
 * (a chunk is one partition's), so concurrent partitions lock different rows. 0 outside Kafka.
 */
function batchStripe(items: readonly BatchItem[]): number {
  return items[0]?.partition ?? 0;
}

function frozenUsers(accounts: ReadonlyMap<AccountKey, store.LoadedAccount>): Array<[number, string]> {
  const frozen: Array<[number, string]> = [];
  for (const account of accounts.values()) {
    if (account.frozenReason !== null) frozen.push([parseAccountKey(account.key).ownerId, account.frozenReason]);
  }
  return frozen;
}

/** The batch's freezes and unfreezes: each account's final state, and every change with who made it. */
function freezeWrite(
  state: LedgerState,
  accounts: ReadonlyMap<AccountKey, store.LoadedAccount>,
  items: readonly BatchItem[],
  at: Date,
): store.FreezeWrite {
  if (state.freezes.length === 0) return { accounts: [], changes: [], at };
  const principals = new Map(items.map((item) => [item.command.id, item.principal]));
  return {
    accounts: [...state.frozenAfter()].map(([userId, reason]) => ({
      id: accountId(accounts, available(userId)),
      reason,
    })),
    changes: state.freezes.map((change) => ({ ...change, principal: principals.get(change.commandId)! })),
    at,
  };
}

function groupEvents(rows: readonly store.BalanceEventRow[]): Map<string, store.BalanceEventRow[]> {
  const byCommand = new Map<string, store.BalanceEventRow[]>();
  for (const row of rows) {
    const list = byCommand.get(row.commandId);
    if (list) list.push(row);
    else byCommand.set(row.commandId, [row]);
  }
  return byCommand;
}

/**
 * The changed accounts with their new balances, and the users' available accounts with their
 * new versions (an exact capture changes a user's version but not their available balance).
 */
function withVersions(
  state: LedgerState,
  accounts: ReadonlyMap<AccountKey, store.LoadedAccount>,
  versions: ReadonlyMap<number, bigint>,
): store.BalanceChange[] {
  type Change = store.BalanceChange;
  const changes = new Map<AccountKey, Change>(
    state.changedAccounts().map((c) => [c.key, { ...c, id: accountId(accounts, c.key) }]),
  );
  for (const [userId, version] of versions) {
    const key = available(userId);
    const change = changes.get(key) ?? { key, id: accountId(accounts, key), balance: state.balance(key), delta: 0n };
    changes.set(key, { ...change, version });
  }
  return [...changes.values()];
}

/**
 * Whether an outcome changes its user's version (and makes a balance event): a new command
 * applied that moved money, or froze or unfroze the account.
 */
function movesMoney(outcome: ItemOutcome): outcome is Extract<ItemOutcome, { kind: 'new' }> {
  if (outcome.kind !== 'new' || outcome.decision.status !== 'applied') return false;
  return outcome.decision.postings.length > 0 || outcome.decision.freeze !== undefined;
}

/**
 * The version each money-moving command of the batch takes its user to (docs/events.md), and
 * the versions the batch leaves its users at.
 */
function nextVersions(
  outcomes: readonly ItemOutcome[],
  accounts: ReadonlyMap<AccountKey, store.LoadedAccount>,
): { byCommand: Map<string, bigint>; byUser: Map<number, bigint> } {
  const byUser = new Map<number, bigint>();
  const byCommand = new Map<string, bigint>();
  for (const outcome of outcomes) {
    if (!movesMoney(outcome)) continue;
    const { command } = outcome.item;
    const account = accounts.get(available(command.user_id));
    if (!account) throw new Error(`account ${available(command.user_id)} was not loaded`);
    const version = (byUser.get(command.user_id) ?? account.version) + 1n;
    byUser.set(command.user_id, version);
    byCommand.set(command.id, version);
  }
  return { byCommand, byUser };
}

/**
 * One event per command applied in this batch that moved money, for its user, with the version
 * it took the user to, then one per alert it fired.
 */
function balanceEvents(
  outcomes: readonly ItemOutcome[],
  versions: ReadonlyMap<string, bigint>,
  state: LedgerState,
  now: Date,
): store.BalanceEventRow[] {
  const rows: store.BalanceEventRow[] = [];
  for (const outcome of outcomes) {
    if (!movesMoney(outcome)) continue;
    const { command } = outcome.item;
    const version = versions.get(command.id)!;
    const messageTimeMs = outcome.item.messageTimeMs;
    const common = {
      command,
      sequence: version,
      occurredAt: (typeof messageTimeMs === 'number' ? new Date(messageTimeMs) : now).toISOString(),
      balances: outcome.balances.get(command.user_id)!,
    };
    const entries = command.type === 'settle' ? settleEntries(command) : outcome.decision.entries;
    const payload = balanceEventPayload({ ...common, entries });
    rows.push({ userId: command.user_id, sequence: version, part: 0, commandId: command.id, payload });
    for (const [i, alert] of state.firedBy(outcome.decision).entries()) {
      const alertPayload = thresholdEventPayload({ ...common, alert });
      rows.push({ userId: alert.userId, sequence: version, part: i + 1, commandId: command.id, payload: alertPayload });
    }
  }
  return rows;
}

/** Every account a command moves money in, plus the user accounts its reply reports. */
function accountsToLoad(command: Command): AccountKey[] {
  return [...accountsOf(command), ...usersOf(command).flatMap((u) => [available(u), reserved(u)])];
}

/** The orders the chunk's commands name (the catalog's `namesOrder`): their reservations are loaded. */
function ordersOf(commands: readonly Command[]): store.OrderKey[] {
  const orders = new Map<string, store.OrderKey>();
  for (const c of commands) {
    if (!COMMAND_CATALOG[c.type].namesOrder) continue;
    const { service_id: serviceId, order_id: orderId } = c as { service_id: number; order_id: number };
    orders.set(`${c.user_id}:${serviceId}:${orderId}`, { userId: c.user_id, serviceId, orderId });
  }
  return [...orders.values()];
}

function accountId(accounts: ReadonlyMap<AccountKey, store.LoadedAccount>, key: AccountKey): number {
  const account = accounts.get(key);
  if (!account) throw new Error(`account ${key} was not loaded`);
  return account.id;
}

/** The command, posting and transaction rows of the chunk's new commands. */
function outcomeRows(
  outcomes: readonly ItemOutcome[],
  accounts: ReadonlyMap<AccountKey, store.LoadedAccount>,
  state: LedgerState,
  versions: ReadonlyMap<string, bigint>,
): { commands: store.NewCommandRow[]; postings: store.PostingRow[]; transactions: store.TransactionRow[] } {
  const fresh = outcomes.filter((o): o is Extract<ItemOutcome, { kind: 'new' }> => o.kind === 'new');
  const commands: store.NewCommandRow[] = [];
  const postings: store.PostingRow[] = [];
  const transactions: store.TransactionRow[] = [];
  for (const { item, decision } of fresh) {
    const id = item.command.id;
    commands.push({
      id,
      fingerprint: item.fingerprint,
      type: item.command.type,
      userId: item.command.user_id,
      status: decision.status,
      code: decision.code,
      message: decision.message === defaultMessage(decision.code) ? '' : decision.message,
      partition: item.partition,
      offset: item.offset,
      principal: item.principal,
    });
    const after = decision.postings.length > 0 ? state.postingBalances(decision) : [];
    for (const [i, p] of decision.postings.entries()) {
      postings.push({
        commandId: id,
        debitAccountId: accountId(accounts, p.debit),
        creditAccountId: accountId(accounts, p.credit),
        amount: p.amount,
        debitBalanceAfter: after[i]!.debit,
        creditBalanceAfter: after[i]!.credit,
        versionAfter: versions.get(id)!,
      });
    }
    for (const e of decision.entries) transactions.push({ commandId: id, ...e });
  }
  return { commands, postings, transactions };
}

function rowView(row: store.TransactionRow, id: number, writtenAt: Date): TransactionView {
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

function groupByCommand(views: readonly TransactionView[]): Map<string, TransactionView[]> {
  const byCommand = new Map<string, TransactionView[]>();
  for (const view of views) {
    const list = byCommand.get(view.command_id);
    if (list) list.push(view);
    else byCommand.set(view.command_id, [view]);
  }
  return byCommand;
}

/**
 * The balances of the recipients of applied transfers, as this transaction leaves them: the
 * credit is in `incoming` until the settle on the recipient's partition makes it `available`.
 * Read without locking the recipients' rows (this batch does not decide on them, and locking
 * them would make partitions wait on each other), so their available money may move on at once.
 */
async function recipientBalances(
  db: pg.PoolClient,
  outcomes: readonly ItemOutcome[],
): Promise<Map<number, BalanceView>> {
  const ids = new Set<number>();
  for (const outcome of outcomes) {
    const { command } = outcome.item;
    const applied =
      outcome.kind === 'new'
        ? outcome.decision.status === 'applied'
        : outcome.kind === 'repeat' && outcome.prior.status === 'applied';
    if (command.type === 'transfer' && applied) for (const leg of legsOf(command)) ids.add(leg.recipientId);
  }
  if (ids.size === 0) return new Map();
  const rows = await store.userBalances(db, [...ids]);
  return new Map(
    [...ids].map((id) => {
      const of = (kind: string) => rows.find((r) => r.userId === id && r.kind === kind)?.balance ?? 0n;
      return [
        id,
        { ...balanceView(of('user_available'), of('user_reserved')), incoming: formatMinor(of('user_incoming')) },
      ];
    }),
  );
}

function withRecipient(
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

async function buildResult(
  db: pg.PoolClient,
  outcomes: readonly ItemOutcome[],
  created: Map<string, TransactionView[]>,
  freshEvents: ReadonlyMap<string, store.BalanceEventRow[]>,
): Promise<BatchResult> {
  // Repeats of commands decided in an earlier batch answer with their stored transactions.
  const storedIds = outcomes
    .filter((o) => o.kind === 'repeat' && !created.has(o.item.command.id))
    .map((o) => o.item.command.id);
  const previous = groupByCommand(
    (await store.transactionsOfCommands(db, [...new Set(storedIds)])).map(transactionView),
  );
  const recipients = await recipientBalances(db, outcomes);
  const events = await eventsOf(db, outcomes, freshEvents);
  const settleLegs = await settleLegsOf(db, outcomes);
  const counts = { applied: 0, settled: 0, rejected: 0, duplicates: 0 };
  const replies = outcomes.map((outcome) => {
    const reply = withRecipient(replyFor(outcome, created, previous), outcome, recipients);
    if (reply.duplicate) counts.duplicates += 1;
    else if (reply.status === 'applied' && outcome.item.command.type === 'settle') counts.settled += 1;
    else if (reply.status === 'applied') counts.applied += 1;
    else counts.rejected += 1;
    return reply;
  });
  return {
    replies,
    ...counts,
    events: outcomes.map((o) => events.get(o.item.command.id) ?? []),
    settleLegs: outcomes.map((o) => settleLegs.get(o) ?? []),
  };
}

/**
 * The legs whose settles each outcome publishes: all of a transfer applied by this batch, and
 * of a repeat of one decided earlier, those still in flight. A repeat of a transfer this same
 * batch applied publishes none: the first copy's settles are in this batch's outbox.
 */
async function settleLegsOf(db: pg.PoolClient, outcomes: readonly ItemOutcome[]): Promise<Map<ItemOutcome, number[]>> {
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
async function eventsOf(
  db: pg.PoolClient,
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
