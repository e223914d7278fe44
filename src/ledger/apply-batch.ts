/**
 * Applies a batch of commands the slow, sure way: in one PostgreSQL transaction, load and lock
 * what the batch needs, decide it with the pure rules (decide-chunk.ts), write it with the one
 * write (store/commit-chunk.ts), and return one reply per command. The command rows are written
 * in the same transaction as the postings, which is what makes a redelivered command a no-op:
 * exactly once in effect. The consumer's fast path (cached-apply.ts) decides from its cache
 * instead and falls back to this when the database disagrees with the cache.
 */
import type pg from 'pg';
import type { Command } from '../commands/schema.ts';
import { inTransaction } from '../db/pool.ts';
import { isBoundedAccount, isStripedAccount, type AccountKey, type LedgerLimits } from './core.ts';
import type { BatchItem } from './decide-batch.ts';
import type { CommandReply } from './outcome.ts';
import { accountsToLoad, decideChunk, ordersOf, type DecidedChunk } from './decide-chunk.ts';
import * as store from './store/index.ts';
import { buildResult, groupByCommand, recipientsOf, rowView } from './batch-results.ts';

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

/** A batch applied: its result, and what was decided and committed (for the partition's cache). */
export interface AppliedBatch {
  readonly result: BatchResult;
  readonly decided: DecidedChunk;
  readonly committed: store.CommittedChunk;
}

/**
 * The ledger's sure way in for writes: creates the accounts other partitions may be creating too,
 * then applies the batch in one transaction, fenced by `fence` when given. Throws what
 * PostgreSQL throws; the caller decides what to retry.
 */
export async function applyCommands(
  pool: pg.Pool,
  items: readonly BatchItem[],
  limits: LedgerLimits,
  fence: store.Fence | null = null,
): Promise<AppliedBatch> {
  const shared = sharedAccountsOf(items);
  if (shared.length > 0) await store.createMissingAccounts(pool, shared);
  return inTransaction(pool, (db) => applyBatch(db, items, limits, fence));
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
export function sharedAccountsOf(items: readonly BatchItem[]): AccountKey[] {
  return [...new Set(items.flatMap((item) => accountsToLoad(item.command)))].filter(
    (key) => !isBoundedAccount(key) && !isStripedAccount(key),
  );
}

export async function applyBatch(
  db: pg.PoolClient,
  items: readonly BatchItem[],
  limits: LedgerLimits,
  fence: store.Fence | null = null,
): Promise<AppliedBatch> {
  const commands = items.map((item) => item.command);
  const loaded = await store.loadChunk(db, chunkLoadOf(commands, batchStripe(items)));
  const externalRefs = await store.takenExternalRefs(db, commands);
  const decided = decideChunk(items, { ...loaded, externalRefs }, limits, new Date());
  const committed = await store.commitChunk(db, {
    ...decided.commit,
    fence,
    reportUserIds: recipientsOf(decided.outcomes),
  });
  const result = await buildResult(db, decided.outcomes, createdViews(decided, committed), decided.events, committed);
  return { result, decided, committed };
}

/** What a chunk of `commands` loads: its ids, its accounts, its orders. */
export function chunkLoadOf(commands: readonly Command[], stripe: number): store.ChunkLoad {
  return {
    commandIds: [...new Set(commands.map((c) => c.id))],
    accounts: commands.flatMap(accountsToLoad),
    stripe,
    orders: ordersOf(commands),
  };
}

/** The transactions each new command created, as the replies show them. */
export function createdViews(decided: DecidedChunk, committed: store.CommittedChunk) {
  return groupByCommand(
    decided.commit.transactions.map((row, i) => rowView(row, committed.transactionIds[i]!, committed.writtenAt)),
  );
}

/**
 * The stripe of the batch's external and revenue accounts: the partition it was consumed from
 * (a chunk is one partition's), so concurrent partitions lock different rows. 0 outside Kafka.
 */
export function batchStripe(items: readonly BatchItem[]): number {
  return items[0]?.partition ?? 0;
}
