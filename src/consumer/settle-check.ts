/**
 * A settle with a valid proof must still settle what its transfer moved, and each leg only once.
 * Live, the transfer is always in the database first, so a settle of an unknown transfer is
 * refused; in a replay it may not be there yet (partitions go at their own pace), and then the
 * proof alone decides. A leg has one settle id, but a transfer with one leg could be named two
 * ways (`~settle:<id>`, `~settle:<id>#<recipient>`): the first settle of a leg wins, and any
 * other id for the same leg is refused. Pure: prefetch.ts reads the transfers and settles.
 */
import { type Command, settleIdOf, settleSourceOf } from '../commands/schema.ts';

export type Credits = ReadonlyMap<string, ReadonlyArray<{ userId: number; amount: bigint }>>;
type Settle = Extract<Command, { type: 'settle' }>;

/** Why a settle must not apply, or null. Records the leg as settled by it when it may. */
export function settleProblem(
  mode: 'live' | 'replay',
  settle: Settle,
  credits: Credits,
  settledBy: Map<string, string>,
): string | null {
  const { transferId, legRecipientId } = settleSourceOf(settle.id);
  const legs = credits.get(transferId);
  if (!legs) return mode === 'replay' ? null : 'The settle names a transfer that was never applied.';
  if (!settlesItsLeg(settle, legRecipientId, legs))
    return 'The settle does not match the transfer it settles (recipient or amount).';
  const leg = legKey(transferId, settle.user_id);
  const first = settledBy.get(leg);
  if (first !== undefined && first !== settle.id)
    return `The leg is already settled by ${first}: a leg has one settle.`;
  settledBy.set(leg, settle.id);
  return null;
}

/** The other id each one-leg transfer's leg could have been settled under (to look up). */
export function otherSettleIds(settles: readonly Settle[], credits: Credits): string[] {
  const others: string[] = [];
  for (const settle of settles) {
    const { transferId, legRecipientId } = settleSourceOf(settle.id);
    const legs = credits.get(transferId);
    if (legs?.length !== 1) continue;
    others.push(legRecipientId === null ? settleIdOf(transferId, legs[0]!.userId) : settleIdOf(transferId));
  }
  return others;
}

/** The legs already settled, by leg: from the applied settles among `decided` (settle id -> status). */
export function settledLegs(decided: ReadonlyMap<string, { status: string }>, credits: Credits): Map<string, string> {
  const settledBy = new Map<string, string>();
  for (const [id, stored] of decided) {
    if (stored.status !== 'applied') continue;
    const { transferId } = settleSourceOf(id);
    const legs = credits.get(transferId);
    if (legs?.length === 1) settledBy.set(legKey(transferId, legs[0]!.userId), id);
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
  settle: Settle,
  legRecipientId: number | null,
  legs: ReadonlyArray<{ userId: number; amount: bigint }>,
): boolean {
  if (legRecipientId === null && legs.length !== 1) return false;
  const leg = legRecipientId === null ? legs[0] : legs.find((l) => l.userId === legRecipientId);
  return leg !== undefined && leg.userId === settle.user_id && leg.amount === settle.amount;
}
