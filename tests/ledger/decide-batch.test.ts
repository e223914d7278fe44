import { describe, expect, it } from 'vitest';
import { commandFingerprint, createCommandSchema } from '../../src/commands/schema.ts';
import { available } from '../../src/ledger/core.ts';
import { decideBatch, type BatchItem } from '../../src/ledger/decide-batch.ts';
import { LedgerState } from '../../src/ledger/state.ts';

const schema = createCommandSchema({ amountMinorMax: 100_000_000_000 });
const LIMITS = { amountMinorMax: 100_000_000_000n, balanceMinorMax: 1_000_000_000_000_000n, alertsPerUserMax: 20 };
function item(input: Record<string, unknown>): BatchItem {
  const command = schema.parse(input);
  return { command, fingerprint: commandFingerprint(command), partition: 0, offset: '0', principal: 'test' };
}

describe('decideBatch', () => {
  it('applies a repeated id once and answers the repeat from the first outcome', () => {
    const state = new LedgerState([], []);
    const deposit = item({ id: 'd', type: 'deposit', user_id: 1, amount: '5.00' });
    const outcomes = decideBatch(state, [deposit, deposit], new Map(), LIMITS);
    expect(outcomes.map((o) => o.kind)).toEqual(['new', 'repeat']);
    expect(state.balance(available(1))).toBe(500n);
  });

  it('answers a command already stored as a repeat, without deciding it again', () => {
    const state = new LedgerState([], []);
    const withdraw = item({ id: 'w', type: 'withdraw', user_id: 1, amount: '5.00' });
    const stored = new Map([
      [
        'w',
        { fingerprint: withdraw.fingerprint, status: 'rejected' as const, code: 'insufficient_funds', message: '' },
      ],
    ]);
    const [outcome] = decideBatch(state, [withdraw], stored, LIMITS);
    expect(outcome).toMatchObject({ kind: 'repeat', prior: { status: 'rejected', code: 'insufficient_funds' } });
  });

  it('calls the same id with other content a reuse, and changes nothing for it', () => {
    const state = new LedgerState([], []);
    const first = item({ id: 'k', type: 'deposit', user_id: 1, amount: '5.00' });
    const second = item({ id: 'k', type: 'deposit', user_id: 1, amount: '6.00' });
    const outcomes = decideBatch(state, [first, second], new Map(), LIMITS);
    expect(outcomes.map((o) => o.kind)).toEqual(['new', 'reused']);
    expect(state.balance(available(1))).toBe(500n);
  });

  it('reports the balances each command left, in order', () => {
    const state = new LedgerState([], []);
    const outcomes = decideBatch(
      state,
      [
        item({ id: 'a', type: 'deposit', user_id: 1, amount: '5.00' }),
        item({ id: 'b', type: 'deposit', user_id: 1, amount: '1.00' }),
      ],
      new Map(),
      LIMITS,
    );
    expect(outcomes.map((o) => o.balances.get(1)?.available)).toEqual([500n, 600n]);
  });
});
