import { describe, expect, it } from 'vitest';
import { type LedgerPayment, matchStatement, summarise } from '../../../src/ledger/reconciliation/match.ts';
import { parseStatement } from '../../../src/ledger/reconciliation/statement-csv.ts';

const T0 = Date.parse('2026-12-01T10:00:00Z');
const MIN = 60_000;
const OPTIONS = { amountToleranceMinor: 0n, timeDriftMs: 60 * MIN };

const payment = (
  commandId: string,
  amount: number,
  minutes: number,
  direction: 'deposit' | 'withdraw',
  ref: string | null,
): LedgerPayment => ({
  commandId,
  externalRef: ref,
  amount: BigInt(amount),
  timeMs: T0 + minutes * MIN,
  direction,
});

/** A statement with one of each thing a month's close finds. */
const STATEMENT = `reference,amount,currency,time,direction
pi_1,100.00,RUB,2026-12-01T10:00:00Z,deposit
pi_2,50.00,RUB,2026-12-01T10:05:00Z,deposit
pi_3,70.00,RUB,2026-12-01T10:10:00Z,deposit
pi_2,50.00,RUB,2026-12-01T10:05:00Z,deposit
pi_4,20.00,RUB,2026-12-01T10:20:00Z,deposit
po_9,60.00,RUB,2026-12-01T12:00:00Z,withdraw
`;

const LEDGER = [
  payment('dep-1', 10_000, 0, 'deposit', 'pi_1'),
  payment('dep-2', 5_000, 6, 'deposit', 'pi_2'),
  // pi_3: the ledger credited 69.00, not 70.00.
  payment('dep-3', 6_900, 10, 'deposit', 'pi_3'),
  // pi_4 is missing from the ledger; this one has no reference but the same amount, too late.
  payment('dep-x', 2_000, 200, 'deposit', null),
  // The payout po_9 covers three withdrawals made without references.
  payment('wd-1', 1_000, 100, 'withdraw', null),
  payment('wd-2', 2_000, 101, 'withdraw', null),
  payment('wd-3', 3_000, 102, 'withdraw', null),
];

describe('matching a statement against the ledger', () => {
  it('reports each planted difference in its category', () => {
    const results = matchStatement(parseStatement(Buffer.from(STATEMENT)), LEDGER, OPTIONS);
    const shown = results.map((r) => [
      r.category,
      r.line?.reference ?? null,
      r.payments.map((p) => p.commandId),
      r.difference,
    ]);
    expect(shown).toEqual([
      ['duplicate_in_statement', 'pi_2', [], null],
      ['matched', 'pi_1', ['dep-1'], 0n],
      ['matched', 'pi_2', ['dep-2'], 0n],
      ['amount_differs', 'pi_3', ['dep-3'], 100n],
      ['missing_in_ledger', 'pi_4', [], null],
      ['matched_many', 'po_9', ['wd-1', 'wd-2', 'wd-3'], 0n],
      ['missing_in_statement', null, ['dep-x'], null],
    ]);
    const summary = summarise(results);
    expect(summary.missing_in_ledger).toEqual({ count: 1, statementMinor: 2_000n, ledgerMinor: 0n });
    expect(summary.missing_in_statement).toEqual({ count: 1, statementMinor: 0n, ledgerMinor: 2_000n });
    expect(summary.matched_many).toEqual({ count: 1, statementMinor: 6_000n, ledgerMinor: 6_000n });
  });

  it('pairs by amount and time within the drift and tolerance, nearest first, when references are missing', () => {
    const lines = parseStatement(
      Buffer.from('reference,amount,currency,time,direction\nbank-7,30.00,RUB,2026-12-01T10:30:00Z,credit\n'),
    );
    const ledger = [payment('far', 3_000, 100, 'deposit', null), payment('near', 3_001, 35, 'deposit', null)];
    expect(matchStatement(lines, ledger, OPTIONS).map((r) => [r.category, r.payments.map((p) => p.commandId)])).toEqual(
      [
        ['missing_in_ledger', []],
        ['missing_in_statement', ['near']],
        ['missing_in_statement', ['far']],
      ],
    );
    const tolerant = matchStatement(lines, ledger, { ...OPTIONS, amountToleranceMinor: 1n });
    expect(tolerant.map((r) => [r.category, r.rule, r.payments.map((p) => p.commandId), r.difference])).toEqual([
      ['matched', 'amount_and_time', ['near'], -1n],
      ['missing_in_statement', null, ['far'], null],
    ]);
  });

  it('reports a reference whose time is off by more than the drift as time_differs', () => {
    const lines = parseStatement(
      Buffer.from('reference,amount,currency,time,direction\npi_1,1.00,RUB,2026-12-03T10:00:00Z,in\n'),
    );
    expect(matchStatement(lines, [payment('d', 100, 0, 'deposit', 'pi_1')], OPTIONS)[0]).toMatchObject({
      category: 'time_differs',
      rule: 'reference',
    });
  });

  it('never pairs a payment that has a reference with a line of another reference', () => {
    const lines = parseStatement(
      Buffer.from('reference,amount,currency,time,direction\npi_A,10.00,RUB,2026-12-01T10:00:00Z,in\n'),
    );
    const results = matchStatement(lines, [payment('b', 1_000, 0, 'deposit', 'pi_B')], OPTIONS);
    expect(results.map((r) => r.category)).toEqual(['missing_in_ledger', 'missing_in_statement']);
  });

  it("looks at the payments nearest the line's time first, however many the drift holds before it", () => {
    const lines = parseStatement(
      Buffer.from('reference,amount,currency,time,direction\nbank-1,1.00,RUB,2026-12-01T10:00:00Z,in\n'),
    );
    // 3,000 payments of the same amount in the hour before: more than a line looks at.
    const earlier = Array.from({ length: 3_000 }, (_, i) => ({
      ...payment(`e-${i}`, 100, -59, 'deposit', null),
      timeMs: T0 - 3_540_000 + i,
    }));
    const results = matchStatement(lines, [...earlier, payment('exact', 100, 0, 'deposit', null)], OPTIONS);
    expect(results[0]).toMatchObject({
      category: 'matched',
      payments: [expect.objectContaining({ commandId: 'exact' })],
    });
  });

  it('gives the same results, in the same order, every time', () => {
    const lines = parseStatement(Buffer.from(STATEMENT));
    expect(matchStatement(lines, [...LEDGER].reverse(), OPTIONS)).toEqual(matchStatement(lines, LEDGER, OPTIONS));
  });
});
