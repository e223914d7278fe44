import { settleIdOf } from '../commands/schema.ts';
import type { CommandOf } from './core.ts';

/** One recipient of a transfer: the only one, or one leg of a split payment. */
export interface TransferLeg {
  readonly recipientId: number;
  readonly amount: bigint;
  readonly comment: string | undefined;
}

/** A transfer's legs, in the order given: one for `recipient_id`, one per entry of `recipients`. */
export function legsOf(transfer: CommandOf<'transfer'>): TransferLeg[] {
  if (transfer.recipients)
    return transfer.recipients.map((leg) => ({
      recipientId: leg.recipient_id,
      amount: leg.amount,
      comment: leg.comment ?? transfer.comment,
    }));
  return [{ recipientId: transfer.recipient_id!, amount: transfer.amount!, comment: transfer.comment }];
}

export function transferTotal(transfer: CommandOf<'transfer'>): bigint {
  return legsOf(transfer).reduce((total, leg) => total + leg.amount, 0n);
}

/**
 * The commands that complete an applied transfer on its recipients' partitions, one per leg. Each
 * id is derived from the transfer's (and, for a split payment, the leg's recipient), so
 * publishing them again (after a crash) has one effect each.
 */
export function settlesOf(transfer: CommandOf<'transfer'>): CommandOf<'settle'>[] {
  const split = transfer.recipients !== undefined;
  return legsOf(transfer).map((leg) => ({
    id: settleIdOf(transfer.id, split ? leg.recipientId : undefined),
    type: 'settle',
    user_id: leg.recipientId,
    amount: leg.amount,
  }));
}

/** The settle of a transfer to one recipient. */
export function settleOf(transfer: CommandOf<'transfer'>): CommandOf<'settle'> {
  const [only, ...more] = settlesOf(transfer);
  if (more.length > 0) throw new Error(`${transfer.id} is a split payment: it has a settle per leg`);
  return only!;
}
