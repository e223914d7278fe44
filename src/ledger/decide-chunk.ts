/**
 * A chunk decided in memory: from the state loaded for it (by the database, or the partition's
 * cache), the pure rules decide each command, and this turns the decisions into everything the
 * one write (store/commit-chunk.ts) needs, and what the cache keeps afterwards. Pure: no I/O,
 * so the fast path and the fallback path decide alike, and it is unit-tested on its own.
 */
import { COMMAND_CATALOG } from '../commands/catalog.ts';
import type { Command } from '../commands/schema.ts';
import {
  accountsOf,
  available,
  isBoundedAccount,
  parseAccountKey,
  reserved,
  usersOf,
  type AccountKey,
  type LedgerLimits,
} from './core.ts';
import { decideBatch, defaultMessage, type BatchItem, type ItemOutcome } from './decide-batch.ts';
import { GENESIS_HASH_HEX, linkHash } from './chain.ts';
import { balanceEventPayload, settleEntries, thresholdEventPayload } from './events.ts';
import { LedgerState } from './state.ts';
import type * as store from './store/index.ts';

/** What a chunk reads before it decides: the same shape from the database or from the cache. */
export type LoadedState = Omit<store.LoadedChunk, 'stored'> & {
  readonly stored: ReadonlyMap<string, store.StoredCommand>;
  /** The external references the chunk's commands name that are taken (store/external-payments.ts). */
  readonly externalRefs?: ReadonlySet<string>;
};

export interface DecidedChunk {
  readonly outcomes: readonly ItemOutcome[];
  /** The state after the chunk: balances, reservations, alerts and freezes as it leaves them. */
  readonly state: LedgerState;
  /** The version each user's available account ends at, for users the chunk moved money of. */
  readonly versions: ReadonlyMap<number, bigint>;
  /** The hash each of those users' history chain ends at (chain.ts), as hex. */
  readonly chainHeads: ReadonlyMap<number, string>;
  /** The write, without the fence and the reported users (the caller's). */
  readonly commit: Omit<store.ChunkCommit, 'fence' | 'reportUserIds'>;
  /** Balance events, by command. */
  readonly events: ReadonlyMap<string, store.BalanceEventRow[]>;
}

/**
 * Decides the chunk on `loaded` and builds its write. `now` stands in for an event's time only
 * when its message's Kafka timestamp is missing or impossible.
 */
export function decideChunk(
  items: readonly BatchItem[],
  loaded: LoadedState,
  limits: LedgerLimits,
  now: Date,
): DecidedChunk {
  const { accounts, reservations, alerts } = loaded;
  const state = new LedgerState(
    [...accounts.values()].map((a) => [a.key, a.balance] as const),
    reservations.open,
    reservations.expired,
    alerts,
    { captured: reservations.captured, frozen: frozenUsers(accounts), externalRefs: loaded.externalRefs },
  );
  const outcomes = decideBatch(state, items, loaded.stored, limits);
  const versions = nextVersions(outcomes, accounts);
  const rows = outcomeRows(outcomes, accounts, state, versions.byCommand);
  const linked = linkEvents(balanceEvents(outcomes, versions.byCommand, state, now), accounts);
  const eventRows = linked.rows;
  const alertChanges = state.alertChanges();
  return {
    outcomes,
    state,
    versions: versions.byUser,
    chainHeads: linked.heads,
    events: groupEvents(eventRows),
    commit: {
      ...rows,
      reservations: state.changedReservations,
      refunds: state.refunds(),
      alerts: {
        upserts: alertChanges.upserts,
        deletes: alertChanges.deletes,
        counts: new Map([...alertChanges.counts].map(([userId, n]) => [accountId(accounts, available(userId)), n])),
      },
      freezes: freezeWrite(state, accounts, items),
      externalPayments: externalPaymentRows(state, items, now),
      userAccounts: userAccountWrites(state, accounts, versions.byUser, linked.heads),
      sharedDeltas: sharedDeltas(state, accounts),
      events: eventRows,
      partition: items[0]?.partition ?? null,
    },
  };
}

/**
 * Every user account the chunk read: what it held when the chunk was decided (the write checks
 * it still does) and what the chunk leaves it at.
 */
function userAccountWrites(
  state: LedgerState,
  accounts: ReadonlyMap<AccountKey, store.LoadedAccount>,
  versions: ReadonlyMap<number, bigint>,
  chainHeads: ReadonlyMap<number, string>,
): store.UserAccountWrite[] {
  const writes: store.UserAccountWrite[] = [];
  for (const account of accounts.values()) {
    if (!isBoundedAccount(account.key)) continue;
    const isAvailable = parseAccountKey(account.key).kind === 'user_available';
    const userId = parseAccountKey(account.key).ownerId;
    writes.push({
      id: account.id,
      key: account.key,
      expectedBalance: account.balance,
      expectedVersion: isAvailable ? account.version : null,
      balance: state.balance(account.key),
      version: isAvailable ? (versions.get(userId) ?? account.version) : null,
      chainHash: isAvailable ? (chainHeads.get(userId) ?? null) : null,
    });
  }
  return writes;
}

/** What the chunk adds to each shared account (incoming, external and revenue stripes), by id. */
function sharedDeltas(state: LedgerState, accounts: ReadonlyMap<AccountKey, store.LoadedAccount>): Map<number, bigint> {
  const deltas = new Map<number, bigint>();
  for (const change of state.changedAccounts())
    if (!isBoundedAccount(change.key)) deltas.set(accountId(accounts, change.key), change.delta);
  return deltas;
}

/** The accounts a command needs loaded: those it moves money in, and the user accounts its reply reports. */
export function accountsToLoad(command: Command): AccountKey[] {
  return [...accountsOf(command), ...usersOf(command).flatMap((u) => [available(u), reserved(u)])];
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
): store.FreezeWrite {
  if (state.freezes.length === 0) return { accounts: [], changes: [] };
  const principals = new Map(items.map((item) => [item.command.id, item.principal]));
  return {
    accounts: [...state.frozenAfter()].map(([userId, reason]) => ({
      id: accountId(accounts, available(userId)),
      reason,
    })),
    changes: state.freezes.map((change) => ({ ...change, principal: principals.get(change.commandId)! })),
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
    rows.push({ userId: command.user_id, sequence: version, part: 0, commandId: command.id, payload, hash: null });
    for (const [i, alert] of state.firedBy(outcome.decision).entries()) {
      const alertPayload = thresholdEventPayload({ ...common, alert });
      rows.push({
        userId: alert.userId,
        sequence: version,
        part: i + 1,
        commandId: command.id,
        payload: alertPayload,
        hash: null,
      });
    }
  }
  return rows;
}

/**
 * Links each version's events to its user's chain (chain.ts): the hash goes on the balance event
 * (part 0), after the parts that follow it are known. Rows come grouped by command, part 0 first.
 */
function linkEvents(
  rows: readonly store.BalanceEventRow[],
  accounts: ReadonlyMap<AccountKey, store.LoadedAccount>,
): { rows: store.BalanceEventRow[]; heads: Map<number, string> } {
  const heads = new Map<number, string>();
  const linked: store.BalanceEventRow[] = [];
  for (let start = 0; start < rows.length; ) {
    let end = start + 1;
    while (end < rows.length && rows[end]!.part > 0) end++;
    const first = rows[start]!;
    const previous = heads.get(first.userId) ?? accounts.get(available(first.userId))?.chainHash ?? GENESIS_HASH_HEX;
    const hash = linkHash(
      previous,
      rows.slice(start, end).map((r) => r.payload),
    );
    heads.set(first.userId, hash);
    linked.push({ ...first, hash }, ...rows.slice(start + 1, end));
    start = end;
  }
  return { rows: linked, heads };
}

/** The rows of the deposits and withdrawals that named their service, at their messages' times. */
function externalPaymentRows(state: LedgerState, items: readonly BatchItem[], now: Date): store.ExternalPaymentRow[] {
  if (state.externalPayments.length === 0) return [];
  const timeOf = new Map(items.map((item) => [item.command.id, item.messageTimeMs]));
  return state.externalPayments.map((p) => {
    const ms = timeOf.get(p.commandId);
    return { ...p, occurredAt: (typeof ms === 'number' ? new Date(ms) : now).toISOString() };
  });
}

/** The orders the chunk's commands name (the catalog's `namesOrder`): their reservations are loaded. */
export function ordersOf(commands: readonly Command[]): store.OrderKey[] {
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
