/**
 * The fast path of a chunk, for the consumer that owns its partition: decide from the
 * partition's cache (state-cache.ts), reading only what it misses in one set-based read, then
 * write everything with one statement (store/commit-chunk.ts), fenced by the partition's epoch,
 * together with the chunks other partitions decided meanwhile (chunk-writer.ts). That statement
 * is the chunk's whole transaction: one round trip when every user is warm.
 *
 * When the database disagrees with the cache (a command decided already that the cache did not
 * know, a row changed behind it), the write is refused whole, the users involved are forgotten,
 * and the caller applies the chunk the sure way (apply-batch.ts), which reads and locks them.
 */
import type pg from 'pg';
import { available, isBoundedAccount, isStripedAccount, reserved, type LedgerLimits } from './core.ts';
import type { BatchItem } from './decide-batch.ts';
import { decideChunk } from './decide-chunk.ts';
import { type AppliedBatch, batchStripe, chunkLoadOf, createdViews } from './apply-batch.ts';
import { buildResult, recipientsOf } from './batch-results.ts';
import type { ChunkWriter } from './chunk-writer.ts';
import { ownersOf, type StateCache } from './state-cache.ts';
import * as store from './store/index.ts';

/** What happened on the fast path: applied, or why the chunk must go the sure way. */
export type CachedOutcome =
  | { readonly kind: 'applied'; readonly applied: AppliedBatch; readonly coldUsers: number }
  | { readonly kind: 'fallback'; readonly reason: 'repeat' | 'too_many_users' | store.RefusalReason };

/**
 * Applies `items` (one partition's chunk) from `cache`, or says why it cannot. Throws what
 * PostgreSQL throws, and `ChunkRefusedError` with reason `partition_lost` when the partition's
 * epoch is no longer `fence`'s: nothing was written, and this consumer must not write again.
 */
export async function applyCached(
  pool: pg.Pool,
  items: readonly BatchItem[],
  limits: LedgerLimits,
  owner: { readonly cache: StateCache; readonly fence: store.Fence; readonly writer: ChunkWriter },
  usersMax: number,
): Promise<CachedOutcome> {
  const { cache, fence, writer } = owner;
  const commands = items.map((item) => item.command);
  const load = chunkLoadOf(commands, batchStripe(items));
  if (cache.decidedAny(load.commandIds)) return { kind: 'fallback', reason: 'repeat' };
  const keys = [...new Set(load.accounts)];
  const users = ownersOf(keys.filter(isBoundedAccount));
  // A chunk with more users than half the cache holds could evict its own users while reading them.
  if (users.length * 2 > usersMax) return { kind: 'fallback', reason: 'too_many_users' };
  const sharedKeys = keys.filter((key) => !isBoundedAccount(key));
  const misses = cache.missing(users, load.orders, sharedKeys);
  const cold = misses.users.length + misses.orders.length + misses.shared.length;
  if (cold > 0) {
    const repeats = await readMisses(pool, cache, misses, load);
    if (repeats) return { kind: 'fallback', reason: 'repeat' };
  }
  // The cache holds no external references: a chunk naming some reads them (the index guards the race).
  const externalRefs = await store.takenExternalRefs(pool, commands);
  const decided = decideChunk(
    items,
    { ...cache.loaded(users, load.orders, sharedKeys), externalRefs },
    limits,
    new Date(),
  );
  let committed: store.CommittedChunk;
  try {
    committed = await writer.commit({ ...decided.commit, fence, reportUserIds: recipientsOf(decided.outcomes) });
  } catch (error) {
    if (!(error instanceof store.ChunkRefusedError) || error.reason === 'partition_lost') throw error;
    cache.evictUsers(users);
    return { kind: 'fallback', reason: error.reason };
  }
  cache.absorbDecided(decided, committed, users, load.orders);
  const result = await buildResult(pool, decided.outcomes, createdViews(decided, committed), decided.events, committed);
  return { kind: 'applied', applied: { result, decided, committed }, coldUsers: misses.users.length };
}

/**
 * One read of what the cache misses (creating the accounts that do not exist yet), taken into
 * the cache. It also asks whether any command of the chunk was decided already: true if so (the
 * chunk then goes the sure way, which answers repeats from what was stored).
 */
async function readMisses(
  pool: pg.Pool,
  cache: StateCache,
  misses: ReturnType<StateCache['missing']>,
  load: store.ChunkLoad,
): Promise<boolean> {
  // Accounts other partitions may be creating too are created on their own first, as the sure
  // path does, so two partitions' reads never wait on each other's inserts.
  const sharedToCreate = misses.shared.filter((key) => !isStripedAccount(key));
  if (sharedToCreate.length > 0) await store.createMissingAccounts(pool, sharedToCreate);
  const userKeys = misses.users.flatMap((userId) => [available(userId), reserved(userId)]);
  const loaded = await store.loadChunk(pool, {
    commandIds: load.commandIds,
    accounts: [...userKeys, ...misses.shared],
    stripe: load.stripe,
    orders: misses.orders,
  });
  cache.absorbLoaded(loaded, misses);
  return loaded.stored.size > 0;
}
