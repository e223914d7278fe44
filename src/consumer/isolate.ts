import { pgErrorCode } from '../db/errors.ts';
import { failureKind } from '../failures.ts';
import { recordUnprocessable } from '../ledger/apply-batch.ts';
import { RESULT_CODES } from '../ledger/core.ts';
import type { CommandReply } from '../ledger/outcome.ts';
import { applyWithRetry, retrying } from './apply.ts';
import type { Fence } from '../ledger/store/index.ts';
import type { Candidate, Context, ItemResult, WriteCounts } from './pipeline-context.ts';

/**
 * The commit step's sure way (commit-step.ts). Applies the candidates in one transaction; if the database refuses the
 * data, applies each half on its own (first half first, so offset order holds), down to single
 * commands. k bad commands in n cost about 2k·log2(n) extra transactions; none costs nothing.
 */
export async function applyIsolating(
  ctx: Context,
  candidates: readonly Candidate[],
  fence: Fence | null,
  writes: WriteCounts,
): Promise<ItemResult[]> {
  if (candidates.length === 0) return [];
  try {
    writes.sureWrites += 1;
    const result = await applyWithRetry(
      ctx.pool,
      candidates.map((c) => c.item),
      ctx.apply,
      fence,
    );
    return candidates.map((candidate, i) => ({
      candidate,
      reply: result.replies[i]!,
      events: result.events[i],
      settleLegs: result.settleLegs[i],
    }));
  } catch (error) {
    if (failureKind(error) !== 'deterministic') throw error;
    ctx.keepAlive?.();
    if (candidates.length === 1) return [await isolate(ctx, candidates[0]!, error)];
    const middle = Math.ceil(candidates.length / 2);
    const first = await applyIsolating(ctx, candidates.slice(0, middle), fence, writes);
    return [...first, ...(await applyIsolating(ctx, candidates.slice(middle), fence, writes))];
  }
}

/** Records one refused command as rejected `unprocessable`; if even that fails, skips it loudly. */
export async function isolate(ctx: Context, candidate: Candidate, error: unknown): Promise<ItemResult> {
  const { command } = candidate.item;
  const sqlState = pgErrorCode(error);
  const message = unprocessableMessage(error);
  ctx.log.error(
    { err: error, commandId: command.id, offset: candidate.item.offset, sqlState },
    'the database refused a command; recording it as unprocessable',
  );
  try {
    if (!(await retrying(() => recordUnprocessable(ctx.pool, candidate.item, message), 1, ctx.apply))) {
      // Decided meanwhile by another consumer: answer from what it stored (a read, no writes).
      const stored = await applyWithRetry(ctx.pool, [candidate.item], ctx.apply);
      return { candidate, reply: stored.replies[0]! };
    }
  } catch (recordError) {
    if (failureKind(recordError) !== 'deterministic') throw recordError;
    ctx.log.fatal(
      {
        alert: 'unrecorded_command',
        err: recordError,
        commandId: command.id,
        partition: candidate.item.partition,
        offset: candidate.item.offset,
      },
      'OPERATOR ACTION NEEDED: the database refused a command and also its rejection; the command was dead-lettered and skipped without any record',
    );
    return {
      candidate,
      reply: null,
      deadLetter: { code: 'unrecorded', message, sqlState: pgErrorCode(recordError) ?? sqlState },
    };
  }
  const reply: CommandReply = {
    command_id: command.id,
    status: 'rejected',
    code: 'unprocessable',
    message,
    duplicate: false,
    fingerprint: candidate.item.fingerprint,
    transactions: [],
    balances: {},
  };
  return { candidate, reply, deadLetter: { code: 'unprocessable', message, sqlState } };
}

export const SQLSTATE_CLASS_CAUSES: Record<string, string> = {
  '22': 'a value it cannot store',
  '23': 'a constraint the command violates',
  '54': 'a limit the command exceeds',
  LI: 'a ledger invariant it would break',
};

/** Names the cause for the caller, without the database's own message (which may quote data). */
export function unprocessableMessage(error: unknown): string {
  const sqlState = pgErrorCode(error);
  const cause = sqlState
    ? `the database refused it (SQLSTATE ${sqlState}: ${SQLSTATE_CLASS_CAUSES[sqlState.slice(0, 2)] ?? 'an error'})`
    : 'it would break a ledger invariant';
  return `${RESULT_CODES.unprocessable} Cause: ${cause}.`;
}
