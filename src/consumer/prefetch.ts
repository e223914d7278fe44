/**
 * Step 2 of a chunk (pipeline.ts): the reads the checks need, all before anything is judged.
 * Only what the screened chunk asks for: the stored copies of suspects (a redelivered command is
 * a duplicate, not a forgery), and for settles the transfers they settle and the settles their
 * legs already had. A chunk with neither reads nothing. The users' balances are not read here:
 * the commit step takes them from the partition's cache, reading only its misses.
 */
import { settleSourceOf } from '../commands/schema.ts';
import { findCommands, type StoredCommand, transferCredits } from '../ledger/store/index.ts';
import { retrying } from './apply.ts';
import type { Context } from './pipeline-context.ts';
import type { Screened } from './screen.ts';
import { type Credits, otherSettleIds, settledLegs } from './settle-check.ts';

export interface Facts {
  /** The decided commands among the suspects' ids. */
  readonly decidedSuspects: ReadonlyMap<string, StoredCommand>;
  /** What each settled transfer credited, by transfer id. */
  readonly credits: Credits;
  /** The legs already settled, by leg key (settle-check.ts). */
  readonly settledBy: ReadonlyMap<string, string>;
}

export const NO_FACTS: Facts = { decidedSuspects: new Map(), credits: new Map(), settledBy: new Map() };

export async function prefetch(ctx: Context, screened: Screened): Promise<Facts> {
  const suspectIds = [...new Set(screened.suspects.map((s) => s.candidate.item.command.id))];
  const settles = [...screened.candidates, ...screened.suspects.map((s) => s.candidate)]
    .map((c) => c.item.command)
    .filter((command) => command.type === 'settle');
  if (suspectIds.length === 0 && settles.length === 0) return NO_FACTS;
  const transferIds = [...new Set(settles.map((s) => settleSourceOf(s.id).transferId))];
  const [decidedSuspects, credits] = await Promise.all([
    retrying(() => findCommands(ctx.pool, suspectIds), suspectIds.length, ctx.apply),
    retrying(() => transferCredits(ctx.pool, transferIds), transferIds.length, ctx.apply),
  ]);
  const others = otherSettleIds(settles, credits);
  const decidedOthers =
    others.length === 0 ? new Map() : await retrying(() => findCommands(ctx.pool, others), others.length, ctx.apply);
  return { decidedSuspects, credits, settledBy: settledLegs(decidedOthers, credits) };
}
