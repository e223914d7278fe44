/**
 * Step 4 of a chunk (pipeline.ts), the commit: a chunk of screened candidates written once.
 * From the partition's cache in one statement when the consumer owns the partition
 * (cached-apply.ts); the sure way (isolate.ts: loaded and locked in a transaction, halves on a
 * refusal) when it has no cache, when the cache cannot decide the chunk, or when the database
 * refused the cached write. Either way the write is fenced by the partition's epoch: a consumer
 * that lost the partition writes nothing.
 */
import { failureKind } from '../failures.ts';
import { applyCached } from '../ledger/cached-apply.ts';
import { accountsToLoad } from '../ledger/decide-chunk.ts';
import { ledgerLimitsOf } from '../ledger/core.ts';
import { ownersOf } from '../ledger/state-cache.ts';
import { isPartitionLost, retrying } from './apply.ts';
import { applyIsolating } from './isolate.ts';
import { type Candidate, type Context, type ItemResult, type WriteCounts, noWrites } from './pipeline-context.ts';
import { PartitionLostError } from './ownership.ts';

export interface Committed {
  readonly results: ItemResult[];
  /** How the chunk was written, for the driver to count. */
  readonly writes: WriteCounts;
}

export async function commitCandidates(
  ctx: Context,
  partition: number,
  candidates: readonly Candidate[],
): Promise<Committed> {
  const writes = noWrites();
  if (candidates.length === 0) return { results: [], writes };
  if (!ctx.ownership) return { results: await applyIsolating(ctx, candidates, null, writes), writes };
  const ownership = ctx.ownership;
  try {
    const { fence, cache, writer } = await retrying(() => ownership.of(partition), 1, ctx.apply);
    if (cache) {
      const items = candidates.map((c) => c.item);
      const limits = ledgerLimitsOf(ctx.apply.limits);
      const usersMax = ctx.config.consumer.stateCache.usersMax;
      const outcome = await retrying(
        () => applyCached(ctx.pool, items, limits, { cache, fence, writer }, usersMax),
        items.length,
        ctx.apply,
      ).catch((error: unknown) => {
        // Data the database refuses: the sure way finds the command and records it unprocessable.
        if (failureKind(error) === 'deterministic') return { kind: 'fallback', reason: 'refused' } as const;
        throw error;
      });
      if (outcome.kind === 'applied') {
        writes.cachedWrites += 1;
        writes.coldUsers += outcome.coldUsers;
        const { result } = outcome.applied;
        const results = candidates.map((candidate, i) => ({
          candidate,
          reply: result.replies[i]!,
          events: result.events[i],
          settleLegs: result.settleLegs[i],
        }));
        return { results, writes };
      }
      if (outcome.reason === 'duplicate' || outcome.reason === 'stale_state') writes.cacheRefusals += 1;
      // The sure way decides these users from the database: whatever the cache held of them is old.
      cache.evictUsers(ownersOf(items.flatMap((item) => accountsToLoad(item.command))));
    }
    return { results: await applyIsolating(ctx, candidates, fence, writes), writes };
  } catch (error) {
    if (!isPartitionLost(error)) throw error;
    ownership.lost(partition);
    ctx.log.warn({ partition }, 'another consumer claimed this partition: its chunk was not written');
    throw new PartitionLostError(`partition ${partition} was claimed by another consumer`, { cause: error });
  }
}
