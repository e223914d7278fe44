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
  parseAccountKey,
  reserved,
  usersOf,
  type AccountKey,
  type LedgerLimits,
} from './core.ts';
import { decideBatch, defaultMessage, type BatchItem, type ItemOutcome } from './decide-batch.ts';
import type { CommandReply } from './outcome.ts';
import { balanceEventPayload, settleEntries, thresholdEventPayload } from './events.ts';
import { LedgerState } from './state.ts';
import * as store from './store/index.ts';
import { buildResult, groupByCommand, rowView } from './batch-results.ts';

export type { BatchItem } from './decide-batch.ts';

export interface BatchResult {
  readonly replies: CommandReply[];
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
