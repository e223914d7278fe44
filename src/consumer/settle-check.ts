import { type Command, settleIdOf, settleSourceOf } from '../commands/schema.ts';
import { findCommands, transferCredits } from '../ledger/store/index.ts';
import { retrying } from './apply.ts';
import type { Counts } from './counts.ts';
import type { Outbox } from './outbox.ts';
import type { PartitionRef } from './parking.ts';
import { type Candidate, type Context, moveAside } from './pipeline-context.ts';

/**
 * A settle with a valid proof must still settle what its transfer moved, and each leg only once.
 * Live, the transfer is always in the database first, so a settle of an unknown transfer is
 * refused; in a replay it may not be there yet (partitions go at their own pace), and then the
 * proof alone decides. A leg has one settle id, but a transfer with one leg could be named two
 * ways (`~settle:<id>`, `~settle:<id>#<recipient>`): the first settle of a leg wins, and any
 * other id for the same leg is refused.
 */
export async function dropMismatchedSettles(
  ctx: Context,
  source: PartitionRef,
  candidates: Candidate[],
  outbox: Outbox,
  counts: Counts,
): Promise<Candidate[]> {
  const settles = candidates.filter((c) => c.item.command.type === 'settle');
  if (settles.length === 0) return candidates;
  const transferIds = settles.map((c) => settleSourceOf(c.item.command.id).transferId);
  const credits = await retrying(() => transferCredits(ctx.pool, transferIds), settles.length, ctx.apply);
  const settledBy = await settlesOfLegs(ctx, settles, credits);
  return candidates.filter((candidate) => {
    const { command } = candidate.item;
    if (command.type !== 'settle') return true;
    const problem = settleProblem(ctx, command, credits, settledBy);
    if (problem === null) return true;
    moveAside(ctx, source, candidate.message, outbox, counts, { code: 'invalid_command', message: problem });
    counts.forged += 1;
    return false;
  });
}

export type Credits = ReadonlyMap<string, ReadonlyArray<{ userId: number; amount: bigint }>>;

/** Why a settle must not apply, or null. Records the leg as settled by it when it may. */
export function settleProblem(
  ctx: Context,
  settle: Extract<Command, { type: 'settle' }>,
  credits: Credits,
  settledBy: Map<string, string>,
): string | null {
  const { transferId, legRecipientId } = settleSourceOf(settle.id);
  const legs = credits.get(transferId);
  if (!legs) return ctx.mode === 'replay' ? null : 'The settle names a transfer that was never applied.';
  if (!settlesItsLeg(settle, legRecipientId, legs))
    return 'The settle does not match the transfer it settles (recipient or amount).';
  const leg = legKey(transferId, settle.user_id);
  const first = settledBy.get(leg);
  if (first !== undefined && first !== settle.id)
    return `The leg is already settled by ${first}: a leg has one settle.`;
  settledBy.set(leg, settle.id);
  return null;
}

/** The settle that already settled each leg of a one-leg transfer under its other id, by leg. */
export async function settlesOfLegs(
  ctx: Context,
  settles: readonly Candidate[],
  credits: Credits,
): Promise<Map<string, string>> {
  const others: string[] = [];
  for (const { item } of settles) {
    const { transferId, legRecipientId } = settleSourceOf(item.command.id);
    const legs = credits.get(transferId);
    if (legs?.length !== 1) continue;
    others.push(legRecipientId === null ? settleIdOf(transferId, legs[0]!.userId) : settleIdOf(transferId));
  }
  const settledBy = new Map<string, string>();
  if (others.length === 0) return settledBy;
  const decided = await retrying(() => findCommands(ctx.pool, others), others.length, ctx.apply);
  for (const [id, stored] of decided) {
    if (stored.status !== 'applied') continue;
    const { transferId } = settleSourceOf(id);
    settledBy.set(legKey(transferId, credits.get(transferId)![0]!.userId), id);
  }
  return settledBy;
}

export function legKey(transferId: string, recipientId: number): string {
  return `${transferId}\u001f${recipientId}`;
}

/**
 * Whether a settle moves exactly what its leg credited: a transfer to one recipient has one leg
 * and a settle id without a recipient; a split payment's settle names its leg's recipient.
 */
export function settlesItsLeg(
  settle: Extract<Command, { type: 'settle' }>,
  legRecipientId: number | null,
  legs: ReadonlyArray<{ userId: number; amount: bigint }>,
): boolean {
  if (legRecipientId === null && legs.length !== 1) return false;
  const leg = legRecipientId === null ? legs[0] : legs.find((l) => l.userId === legRecipientId);
  return leg !== undefined && leg.userId === settle.user_id && leg.amount === settle.amount;
}
