/**
 * Decides a whole batch in offset order, pure: each command is new (decided against the state
 * as the earlier commands left it), a repeat of a command already decided (in the database or
 * earlier in this batch), or a reuse of an id for different content.
 */
import type { Command } from '../commands/schema.ts';
import {
  available,
  decide,
  reserved,
  RESULT_CODES,
  usersOf,
  type Decision,
  type LedgerLimits,
  type ResultCode,
} from './core.ts';
import type { LedgerState } from './state.ts';

export interface BatchItem {
  readonly command: Command;
  readonly fingerprint: string;
  /** Where it came from in Kafka, recorded for operators; null for commands from elsewhere. */
  readonly partition: number | null;
  readonly offset: string | null;
  /** Who sent it, as recorded in `commands.principal` (see commands/principal-proof.ts). */
  readonly principal: string;
  /**
   * The Kafka timestamp of its message (ms since epoch), when it names a writable instant: its
   * balance event's occurred_at. Null or absent: the chunk's own time is used.
   */
  readonly messageTimeMs?: number | null;
}

export interface PriorDecision {
  readonly fingerprint: string;
  readonly status: 'applied' | 'rejected';
  readonly code: string;
  readonly message: string;
}

export type Balances = ReadonlyMap<number, { readonly available: bigint; readonly reserved: bigint }>;

export type ItemOutcome =
  | { readonly kind: 'new'; readonly item: BatchItem; readonly decision: Decision; readonly balances: Balances }
  | { readonly kind: 'repeat'; readonly item: BatchItem; readonly prior: PriorDecision; readonly balances: Balances }
  | { readonly kind: 'reused'; readonly item: BatchItem; readonly balances: Balances };

export function decideBatch(
  state: LedgerState,
  items: readonly BatchItem[],
  stored: ReadonlyMap<string, PriorDecision>,
  limits: LedgerLimits,
): ItemOutcome[] {
  const decidedHere = new Map<string, PriorDecision>();
  return items.map((item) => {
    const id = item.command.id;
    const prior = stored.get(id) ?? decidedHere.get(id);
    if (prior) {
      const kind = prior.fingerprint === item.fingerprint ? 'repeat' : 'reused';
      return kind === 'repeat'
        ? { kind, item, prior, balances: balancesOf(state, item.command) }
        : { kind, item, balances: balancesOf(state, item.command) };
    }
    const decision = decide(state, item.command, limits);
    state.apply(id, decision);
    decidedHere.set(id, {
      fingerprint: item.fingerprint,
      status: decision.status,
      code: decision.code,
      message: decision.message,
    });
    return { kind: 'new', item, decision, balances: balancesOf(state, item.command) };
  });
}

function balancesOf(state: LedgerState, command: Command): Balances {
  return new Map(
    usersOf(command).map((userId) => [
      userId,
      { available: state.balance(available(userId)), reserved: state.balance(reserved(userId)) },
    ]),
  );
}

export function defaultMessage(code: string): string {
  return RESULT_CODES[code as ResultCode] ?? code;
}
