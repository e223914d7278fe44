/**
 * The bank checker, shown catching each anomaly it claims to: every test plants exactly one in
 * an otherwise clean history and final state, and the checker must name it.
 */
import { describe, expect, it } from 'vitest';
import { checkHistory, type DecidedCommand, type FinalState, type History, type Operation } from './checker.ts';

const kafka = (offset: string) => ({ via: 'kafka' as const, acked: true, at: { partition: 0, offset } });
const http = { via: 'http' as const, acked: true };

/** A small clean run: two deposits, a transfer (seen), a capture (unknown outcome), a rejection. */
function cleanRun(): { history: History; final: FinalState; commands: Map<string, DecidedCommand> } {
  const operations: Operation[] = [
    {
      id: 'dep-1',
      type: 'deposit',
      userId: 1,
      amountMinor: 10_000n,
      completion: { type: 'ok', outcome: 'published' },
      copies: [kafka('0'), kafka('1')],
    },
    {
      id: 'dep-2',
      type: 'deposit',
      userId: 2,
      amountMinor: 5_000n,
      completion: { type: 'ok', outcome: 'applied' },
      copies: [http],
    },
    {
      id: 'tr-1',
      type: 'transfer',
      userId: 1,
      recipientId: 2,
      amountMinor: 2_500n,
      completion: { type: 'ok', outcome: 'applied' },
      copies: [http],
    },
    {
      id: 'res-1',
      type: 'reserve',
      userId: 2,
      serviceId: 9,
      orderId: 1,
      amountMinor: 1_000n,
      completion: { type: 'ok', outcome: 'applied' },
      copies: [http],
    },
    {
      id: 'cap-1',
      type: 'capture',
      userId: 2,
      serviceId: 9,
      orderId: 1,
      amountMinor: 600n,
      completion: { type: 'info' },
      copies: [{ via: 'http', acked: false }],
    },
    {
      id: 'wd-big',
      type: 'withdraw',
      userId: 1,
      amountMinor: 1_000_000n,
      completion: { type: 'ok', outcome: 'rejected' },
      copies: [http],
    },
    {
      id: 'never',
      type: 'deposit',
      userId: 3,
      amountMinor: 700n,
      completion: { type: 'info' },
      copies: [{ via: 'kafka', acked: false }],
    },
  ];
  const commands = new Map<string, DecidedCommand>([
    ['dep-1', { status: 'applied', postings: 1, source: { partition: 0, offset: '0' } }],
    ['dep-2', { status: 'applied', postings: 1, source: null }],
    ['tr-1', { status: 'applied', postings: 1, source: null }],
    ['res-1', { status: 'applied', postings: 1, source: null }],
    ['cap-1', { status: 'applied', postings: 2, source: null }],
    ['wd-big', { status: 'rejected', postings: 0, source: null }],
  ]);
  const final: FinalState = {
    commands,
    settles: new Map([['tr-1', 2_500n]]),
    balances: new Map([
      [1, { availableMinor: 7_500n, reservedMinor: 0n, incomingMinor: 0n }],
      [2, { availableMinor: 6_900n, reservedMinor: 0n, incomingMinor: 0n }],
    ]),
    revenue: new Map([[9, 600n]]),
  };
  return {
    history: { operations, reads: [{ userId: 1, availableMinor: 10_000n, reservedMinor: 0n, incomingMinor: 0n }] },
    final,
    commands,
  };
}

describe('checkHistory', () => {
  it('passes a clean history, counting its operations and unknown outcomes', () => {
    const { history, final } = cleanRun();
    const report = checkHistory(history, final);
    expect(report).toMatchObject({ valid: true, operations: 7, infos: 2, lost: [], phantom: [], balanceMismatch: [] });
    expect(report.conservation).toEqual({ expected: 15_000n, actual: 15_000n, holds: true });
  });

  it('reports a lost acknowledgement: published to Kafka, never decided', () => {
    const { history, final, commands } = cleanRun();
    commands.delete('dep-1');
    const report = checkHistory(history, final);
    expect(report.lost).toEqual(['dep-1']);
    expect(report.valid).toBe(false);
  });

  it('reports a double application by its command id', () => {
    const { history, final, commands } = cleanRun();
    commands.set('dep-2', { status: 'applied', postings: 2, source: null });
    expect(checkHistory(history, final).doubleApplied).toEqual(['dep-2']);
  });

  it('reports a phantom: an effect nobody invoked, and a settle of no transfer', () => {
    const { history, final, commands } = cleanRun();
    commands.set('ghost', { status: 'applied', postings: 1, source: null });
    (final.settles as Map<string, bigint>).set('no-such-transfer', 100n);
    expect(checkHistory(history, final).phantom).toEqual(['ghost', '~settle:no-such-transfer']);
  });

  it('reports a command the client saw rejected that the database applied', () => {
    const { history, final, commands } = cleanRun();
    commands.set('wd-big', { status: 'applied', postings: 1, source: null });
    expect(checkHistory(history, final).outcomeMismatch).toEqual([
      { id: 'wd-big', expected: 'rejected', actual: 'applied' },
    ]);
  });

  it('reports a command that certainly never reached the service but has an effect', () => {
    const { history, final, commands } = cleanRun();
    const failed: Operation = {
      id: 'refused',
      type: 'deposit',
      userId: 1,
      amountMinor: 1n,
      completion: { type: 'fail' },
      copies: [],
    };
    commands.set('refused', { status: 'applied', postings: 1, source: null });
    expect(checkHistory({ ...history, operations: [...history.operations, failed] }, final).outcomeMismatch).toEqual([
      { id: 'refused', expected: 'never sent', actual: 'applied' },
    ]);
  });

  it('reports a 1-kopeck skew between two users, naming both, though money is conserved', () => {
    const { history, final } = cleanRun();
    const balances = final.balances as Map<
      number,
      { availableMinor: bigint; reservedMinor: bigint; incomingMinor: bigint }
    >;
    balances.set(1, { ...balances.get(1)!, availableMinor: 7_501n });
    balances.set(2, { ...balances.get(2)!, availableMinor: 6_899n });
    const report = checkHistory(history, final);
    expect(report.balanceMismatch).toEqual([
      { id: 'user 1', expected: '7500', actual: '7501' },
      { id: 'user 2', expected: '6900', actual: '6899' },
    ]);
    expect(report.conservation.holds).toBe(true);
  });

  it('reports revenue that differs from the captures, and money that is not conserved', () => {
    const { history, final } = cleanRun();
    (final.revenue as Map<number, bigint>).set(9, 601n);
    const report = checkHistory(history, final);
    expect(report.balanceMismatch).toEqual([{ id: 'service 9', expected: '600', actual: '601' }]);
    expect(report.conservation).toMatchObject({ expected: 15_000n, actual: 15_001n, holds: false });
  });

  it('reports a negative balance seen in a read during the run', () => {
    const { history, final } = cleanRun();
    const reads = [...history.reads, { userId: 2, availableMinor: -1n, reservedMinor: 0n, incomingMinor: 0n }];
    expect(checkHistory({ ...history, reads }, final).negative).toEqual(['user 2 read -1/0/0']);
  });

  it('reports a deliberately duplicated command that its second copy decided: the first was dropped', () => {
    const { history, final, commands } = cleanRun();
    commands.set('dep-1', { status: 'applied', postings: 1, source: { partition: 0, offset: '1' } });
    expect(checkHistory(history, final).droppedFirstCopies).toEqual(['dep-1']);
  });

  it('accepts a decision by a copy written before the first acknowledged one (a retry wrote the batch twice)', () => {
    const { history, final, commands } = cleanRun();
    const op = history.operations.find((o) => o.id === 'dep-1')!;
    (op as { copies: unknown }).copies = [kafka('5'), kafka('6')];
    commands.set('dep-1', { status: 'applied', postings: 1, source: { partition: 0, offset: '3' } });
    expect(checkHistory(history, final).droppedFirstCopies).toEqual([]);
    commands.set('dep-1', { status: 'applied', postings: 1, source: { partition: 0, offset: '6' } });
    expect(checkHistory(history, final).droppedFirstCopies).toEqual(['dep-1']);
  });

  it('does not trust the database for outcomes the client saw: an applied deposit missing its effect skews the balance', () => {
    const { history, final, commands } = cleanRun();
    commands.set('dep-2', { status: 'applied', postings: 0, source: null });
    const balances = final.balances as Map<
      number,
      { availableMinor: bigint; reservedMinor: bigint; incomingMinor: bigint }
    >;
    balances.set(2, { ...balances.get(2)!, availableMinor: 1_900n });
    expect(checkHistory(history, final).balanceMismatch.map((m) => m.id)).toEqual(['user 2']);
  });

  describe('split payments', () => {
    /** The clean run plus a split payment from user 1: 10.00 to user 2 and 5.00 to user 3, settled. */
    function withSplit() {
      const run = cleanRun();
      (run.history.operations as Operation[]).push({
        id: 'split-1',
        type: 'transfer',
        userId: 1,
        amountMinor: 0n,
        legs: [
          { recipientId: 2, amountMinor: 1_000n },
          { recipientId: 3, amountMinor: 500n },
        ],
        completion: { type: 'ok', outcome: 'applied' },
        copies: [http],
      });
      run.commands.set('split-1', { status: 'applied', postings: 2, source: null });
      const settles = run.final.settles as Map<string, bigint>;
      settles.set('split-1#2', 1_000n);
      settles.set('split-1#3', 500n);
      const balances = run.final.balances as Map<
        number,
        { availableMinor: bigint; reservedMinor: bigint; incomingMinor: bigint }
      >;
      balances.set(1, { ...balances.get(1)!, availableMinor: 6_000n });
      balances.set(2, { ...balances.get(2)!, availableMinor: 7_900n });
      balances.set(3, { availableMinor: 500n, reservedMinor: 0n, incomingMinor: 0n });
      return run;
    }

    it('passes a split payment whose every leg arrived once', () => {
      const { history, final } = withSplit();
      expect(checkHistory(history, final)).toMatchObject({ valid: true, unsettledLegs: [], phantom: [] });
    });

    it('names a leg that never arrived, and one settled with another amount', () => {
      const { history, final } = withSplit();
      const settles = final.settles as Map<string, bigint>;
      settles.delete('split-1#3');
      settles.set('split-1#2', 999n);
      expect(checkHistory(history, final).unsettledLegs).toEqual(['split-1#2', 'split-1#3']);
    });

    it('names a settle of no leg of the transfer, and more postings than legs', () => {
      const { history, final, commands } = withSplit();
      (final.settles as Map<string, bigint>).set('split-1#4', 1n);
      commands.set('split-1', { status: 'applied', postings: 3, source: null });
      const report = checkHistory(history, final);
      expect([report.phantom, report.doubleApplied]).toEqual([['~settle:split-1#4'], ['split-1']]);
    });
  });
});
