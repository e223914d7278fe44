/**
 * The bank checker (Jepsen's bank workload): judges the service only by the history of what
 * clients invoked and observed, against the final state read after the run. Pure: no I/O.
 *
 * Each operation was invoked once and completed as
 *   ok    the client saw the outcome: `applied`, `rejected`, or `published` (Kafka acknowledged
 *         the command; its decision was not seen),
 *   fail  it certainly never reached the service,
 *   info  unknown: a timeout, a 202 never resolved, a lost connection.
 *
 * The model of the ledger starts at zero and adds the effect of every operation the client saw
 * `applied`, and of every `published` or `info` operation that the database records as applied.
 * It never looks up an `ok` outcome in the database: those are what the database is judged by.
 */

export type OperationType = 'deposit' | 'withdraw' | 'reserve' | 'capture' | 'release' | 'transfer';

export interface Copy {
  readonly via: 'http' | 'kafka';
  /** Kafka acknowledged this copy (directly, or the gateway answered for it). */
  readonly acked: boolean;
  /** Where a copy sent straight to Kafka landed. */
  readonly at?: { readonly partition: number; readonly offset: string };
  /** The service answered this copy as a repeat of one already decided. */
  readonly answeredDuplicate?: boolean;
}

export interface Operation {
  readonly id: string;
  readonly type: OperationType;
  readonly userId: number;
  readonly recipientId?: number;
  /** A split payment's legs (then recipientId and amountMinor are unused). */
  readonly legs?: ReadonlyArray<{ readonly recipientId: number; readonly amountMinor: bigint }>;
  readonly serviceId?: number;
  readonly orderId?: number;
  /** 0 for a release, which moves whatever the hold was. */
  readonly amountMinor: bigint;
  readonly completion:
    | { readonly type: 'ok'; readonly outcome: 'applied' | 'rejected' | 'published' }
    | { readonly type: 'fail' }
    | { readonly type: 'info' };
  /** Every copy sent, in order. Retries and deliberate duplicates are copies of one operation. */
  readonly copies: readonly Copy[];
}

export interface BalanceRead {
  readonly userId: number;
  readonly availableMinor: bigint;
  readonly reservedMinor: bigint;
  readonly incomingMinor: bigint;
}

export interface History {
  readonly operations: readonly Operation[];
  /** Balances read while the load ran. */
  readonly reads: readonly BalanceRead[];
}

export interface DecidedCommand {
  readonly status: 'applied' | 'rejected';
  /** Postings written for it: its effect. */
  readonly postings: number;
  readonly source: { readonly partition: number; readonly offset: string } | null;
}

export interface FinalState {
  /** Client commands the database decided (settles apart), by id. */
  readonly commands: ReadonlyMap<string, DecidedCommand>;
  /**
   * Applied settles, by what follows `~settle:` in their id (the transfer's id, with
   * `#<recipient>` for a leg of a split payment), with their amount.
   */
  readonly settles: ReadonlyMap<string, bigint>;
  readonly balances: ReadonlyMap<
    number,
    { readonly availableMinor: bigint; readonly reservedMinor: bigint; readonly incomingMinor: bigint }
  >;
  readonly revenue: ReadonlyMap<number, bigint>;
}

export interface Mismatch {
  readonly id: string;
  readonly expected: string;
  readonly actual: string;
}

export interface CheckReport {
  readonly operations: number;
  readonly infos: number;
  /** Acknowledged (published, applied or rejected as seen) and not decided at all. */
  readonly lost: string[];
  /** More postings than its type can write. */
  readonly doubleApplied: string[];
  /** An effect with no operation behind it. */
  readonly phantom: string[];
  /** The client saw one outcome, the database holds another. */
  readonly outcomeMismatch: Mismatch[];
  /** Users (`user <id>`) and services (`service <id>`) whose balance differs from the model. */
  readonly balanceMismatch: Mismatch[];
  readonly conservation: { readonly expected: bigint; readonly actual: bigint; readonly holds: boolean };
  /** Balances below zero, at the end or in a read during the run. */
  readonly negative: string[];
  /** A deliberately duplicated command decided by a later copy: the first was silently dropped. */
  readonly droppedFirstCopies: string[];
  /** Legs of applied transfers (`<id>#<recipient>`) with no settle of their amount: a credit never arrived. */
  readonly unsettledLegs: string[];
  readonly valid: boolean;
}

/** The most postings a command of each type writes. */
const POSTINGS_MAX: Record<OperationType, number> = {
  deposit: 1,
  withdraw: 1,
  reserve: 1,
  capture: 2,
  release: 1,
  transfer: 1,
};

export function checkHistory(history: History, final: FinalState): CheckReport {
  const byId = new Map(history.operations.map((op) => [op.id, op]));
  const model = new Model();
  const lost: string[] = [];
  const outcomeMismatch: Mismatch[] = [];
  const doubleApplied: string[] = [];
  const droppedFirstCopies: string[] = [];
  const unsettledLegs: string[] = [];
  for (const op of history.operations) {
    const stored = final.commands.get(op.id);
    if (isAcknowledged(op) && !stored) lost.push(op.id);
    const seen = op.completion.type === 'ok' ? op.completion.outcome : null;
    if ((seen === 'applied' || seen === 'rejected') && stored && stored.status !== seen)
      outcomeMismatch.push({ id: op.id, expected: seen, actual: stored.status });
    if (op.completion.type === 'fail' && stored)
      outcomeMismatch.push({ id: op.id, expected: 'never sent', actual: stored.status });
    if (stored && stored.postings > postingsMax(op)) doubleApplied.push(op.id);
    if (firstCopyDropped(op, stored)) droppedFirstCopies.push(op.id);
    // ok outcomes are taken as the client saw them; only unknown ones are looked up.
    const applied =
      seen === 'applied' || ((seen === 'published' || op.completion.type === 'info') && stored?.status === 'applied');
    if (applied) model.apply(op);
    if (op.type === 'transfer' && applied) unsettledLegs.push(...legsNotSettled(op, final.settles));
  }
  const phantom = [...final.commands].filter(([id, c]) => c.postings > 0 && !byId.has(id)).map(([id]) => id);
  for (const settled of final.settles.keys()) {
    const op = byId.get(settled.split('#')[0]!);
    if (op?.type !== 'transfer' || !settleKeysOf(op).includes(settled)) phantom.push(`~settle:${settled}`);
  }
  const balanceMismatch = model.compare(final);
  const actualHeld =
    sum([...final.balances.values()].map((b) => b.availableMinor + b.reservedMinor + b.incomingMinor)) +
    sum([...final.revenue.values()]);
  const conservation = { expected: model.netDeposits, actual: actualHeld, holds: model.netDeposits === actualHeld };
  const negative = negatives(history.reads, final);
  const report = {
    operations: history.operations.length,
    infos: history.operations.filter((op) => op.completion.type === 'info').length,
    lost,
    doubleApplied,
    phantom,
    outcomeMismatch,
    balanceMismatch,
    conservation,
    negative,
    droppedFirstCopies,
    unsettledLegs,
  };
  const valid =
    [lost, doubleApplied, phantom, outcomeMismatch, balanceMismatch, negative, droppedFirstCopies, unsettledLegs].every(
      (list) => list.length === 0,
    ) && conservation.holds;
  return { ...report, valid };
}

/** The most postings an operation may write: a transfer one per leg. */
function postingsMax(op: Operation): number {
  return op.type === 'transfer' ? legsOfOp(op).length : POSTINGS_MAX[op.type];
}

function legsOfOp(op: Operation): ReadonlyArray<{ readonly recipientId: number; readonly amountMinor: bigint }> {
  return op.legs ?? [{ recipientId: op.recipientId!, amountMinor: op.amountMinor }];
}

/** What follows `~settle:` in the id of each leg's settle, in leg order. */
function settleKeysOf(op: Operation): string[] {
  return op.legs ? op.legs.map((leg) => `${op.id}#${leg.recipientId}`) : [op.id];
}

/** The legs of an applied transfer whose settle is missing or moved another amount. */
function legsNotSettled(op: Operation, settles: ReadonlyMap<string, bigint>): string[] {
  const keys = settleKeysOf(op);
  return legsOfOp(op)
    .filter((leg, i) => settles.get(keys[i]!) !== leg.amountMinor)
    .map((leg) => `${op.id}#${leg.recipientId}`);
}

/** The service told the client it has the command: Kafka acknowledged it, or an outcome was seen. */
function isAcknowledged(op: Operation): boolean {
  return op.completion.type === 'ok' || op.copies.some((copy) => copy.acked || copy.answeredDuplicate);
}

/**
 * Copies sent straight to Kafka land at known offsets. When two were acknowledged, the first
 * must be the one that decided the command; the second is only ever a duplicate. A copy before
 * the first acknowledged one may decide it too: a producer retry that writes a batch twice is
 * acknowledged with the second write's offset (see PRODUCER_OPTIONS).
 */
function firstCopyDropped(op: Operation, stored: DecidedCommand | undefined): boolean {
  const placed = op.copies.filter((copy) => copy.via === 'kafka' && copy.acked && copy.at);
  if (placed.length < 2 || !stored?.source) return false;
  const first = placed[0]!.at!;
  return stored.source.partition !== first.partition || BigInt(stored.source.offset) > BigInt(first.offset);
}

function negatives(reads: readonly BalanceRead[], final: FinalState): string[] {
  const found: string[] = [];
  for (const read of reads) {
    if (read.availableMinor < 0n || read.reservedMinor < 0n || read.incomingMinor < 0n)
      found.push(`user ${read.userId} read ${read.availableMinor}/${read.reservedMinor}/${read.incomingMinor}`);
  }
  for (const [userId, b] of final.balances) {
    if (b.availableMinor < 0n || b.reservedMinor < 0n || b.incomingMinor < 0n)
      found.push(`user ${userId} final ${b.availableMinor}/${b.reservedMinor}/${b.incomingMinor}`);
  }
  return found;
}

function sum(values: readonly bigint[]): bigint {
  return values.reduce((total, value) => total + value, 0n);
}

/**
 * What each user holds in all (available + reserved + incoming) and each service earned, from
 * the applied operations alone. How a user's money splits between available and reserved
 * depends on which hold each capture closed, which the history does not carry, so the model
 * checks the total, which every operation changes by a known amount.
 */
class Model {
  private readonly held = new Map<number, bigint>();
  private readonly earned = new Map<number, bigint>();
  netDeposits = 0n;

  apply(op: Operation): void {
    switch (op.type) {
      case 'deposit':
        this.add(this.held, op.userId, op.amountMinor);
        this.netDeposits += op.amountMinor;
        return;
      case 'withdraw':
        this.add(this.held, op.userId, -op.amountMinor);
        this.netDeposits -= op.amountMinor;
        return;
      case 'capture':
        this.add(this.held, op.userId, -op.amountMinor);
        this.add(this.earned, op.serviceId!, op.amountMinor);
        return;
      case 'transfer':
        // Every leg, or none: a split payment is one decision.
        for (const leg of legsOfOp(op)) {
          this.add(this.held, op.userId, -leg.amountMinor);
          this.add(this.held, leg.recipientId, leg.amountMinor);
        }
        return;
      case 'reserve':
      case 'release':
        // Available to reserved and back: the user's total does not move.
        this.add(this.held, op.userId, 0n);
    }
  }

  compare(final: FinalState): Mismatch[] {
    const mismatches: Mismatch[] = [];
    const users = new Set([...this.held.keys(), ...final.balances.keys()]);
    for (const userId of users) {
      const b = final.balances.get(userId);
      const actual = b ? b.availableMinor + b.reservedMinor + b.incomingMinor : 0n;
      const expected = this.held.get(userId) ?? 0n;
      if (actual !== expected)
        mismatches.push({ id: `user ${userId}`, expected: String(expected), actual: String(actual) });
    }
    for (const serviceId of new Set([...this.earned.keys(), ...final.revenue.keys()])) {
      const expected = this.earned.get(serviceId) ?? 0n;
      const actual = final.revenue.get(serviceId) ?? 0n;
      if (actual !== expected)
        mismatches.push({ id: `service ${serviceId}`, expected: String(expected), actual: String(actual) });
    }
    return mismatches;
  }

  private add(map: Map<number, bigint>, key: number, amount: bigint): void {
    map.set(key, (map.get(key) ?? 0n) + amount);
  }
}
