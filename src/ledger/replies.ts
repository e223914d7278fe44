/**
 * Building replies, pure: from a batch's outcomes (the consumer) and from stored outcomes (the
 * read side, polling). Both answer a repeat the same way, through `storedReply`.
 */
import type { ResultCode } from '../commands/result-codes.ts';
import { type Balances, defaultMessage, type ItemOutcome } from './decide-batch.ts';
import { balanceView, type CommandReply, type TransactionView } from './outcome.ts';

export function replyFor(
  outcome: ItemOutcome,
  created: Map<string, TransactionView[]>,
  previous: Map<string, TransactionView[]>,
): CommandReply {
  const id = outcome.item.command.id;
  const fingerprint = outcome.item.fingerprint;
  const balances = balancesView(outcome.balances);
  switch (outcome.kind) {
    case 'new':
      return {
        command_id: id,
        status: outcome.decision.status,
        code: outcome.decision.code,
        message: outcome.decision.message,
        duplicate: false,
        fingerprint,
        transactions: created.get(id) ?? [],
        balances,
      };
    case 'repeat':
      return storedReply({ ...outcome.prior, id, fingerprint }, created.get(id) ?? previous.get(id) ?? [], balances);
    case 'reused':
      return {
        command_id: id,
        status: 'rejected',
        code: 'idempotency_key_reused',
        message: defaultMessage('idempotency_key_reused'),
        duplicate: false,
        fingerprint,
        transactions: [],
        balances,
      };
  }
}

function balancesView(balances: Balances): Record<string, ReturnType<typeof balanceView>> {
  const out: Record<string, ReturnType<typeof balanceView>> = {};
  for (const [userId, b] of balances) out[String(userId)] = balanceView(b.available, b.reserved);
  return out;
}

/** The reply to a command decided earlier, as stored: `duplicate`, with its stored message or the code's default. */
export function storedReply(
  stored: { id: string; fingerprint: string; status: 'applied' | 'rejected'; code: string; message: string },
  transactions: readonly TransactionView[],
  balances: Record<string, ReturnType<typeof balanceView>>,
): CommandReply {
  const code = stored.code as ResultCode;
  return {
    command_id: stored.id,
    status: stored.status,
    code,
    message: stored.message || defaultMessage(code),
    duplicate: true,
    fingerprint: stored.fingerprint,
    transactions,
    balances,
  };
}
