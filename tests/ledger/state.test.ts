import { describe, expect, it } from 'vitest';
import { createCommandSchema } from '../../src/commands/schema.ts';
import { available, decide, incoming, reserved } from '../../src/ledger/core.ts';
import { LedgerState } from '../../src/ledger/state.ts';

const schema = createCommandSchema({ amountMinorMax: 100_000_000_000 });
const LIMITS = { amountMinorMax: 100_000_000_000n, balanceMinorMax: 1_000_000_000_000_000n, alertsPerUserMax: 20 };

/** Decides and applies one command; returns the decision and the balances after its postings. */
function applyOne(state: LedgerState, input: Record<string, unknown>) {
  const command = schema.parse(input);
  const decision = decide(state, command, LIMITS);
  state.apply(command.id, decision);
  return { decision, after: decision.status === 'applied' ? state.postingBalances(decision) : null };
}

describe('LedgerState.postingBalances', () => {
  it("records each posting's user-account balances right after it, in order, from the loaded balances", () => {
    const state = new LedgerState([[available(1), 1_000n]], []);
    expect(applyOne(state, { id: 'd', type: 'deposit', user_id: 1, amount: '5.00' }).after).toEqual([
      { debit: null, credit: 1_500n }, // external -> available
    ]);
    expect(
      applyOne(state, { id: 'r', type: 'reserve', user_id: 1, service_id: 1, order_id: 1, amount: '2.00' }).after,
    ).toEqual([{ debit: 1_300n, credit: 200n }]);
    // A partial capture: the recognized part to revenue, the rest back to available.
    expect(
      applyOne(state, { id: 'c', type: 'capture', user_id: 1, service_id: 1, order_id: 1, amount: '0.50' }).after,
    ).toEqual([
      { debit: 150n, credit: null },
      { debit: 0n, credit: 1_450n },
    ]);
  });

  it('records no balance for incoming: it is credited from other partitions without a lock', () => {
    const state = new LedgerState([[available(1), 1_000n]], []);
    expect(applyOne(state, { id: 't', type: 'transfer', user_id: 1, recipient_id: 2, amount: '1.00' }).after).toEqual([
      { debit: 900n, credit: null },
    ]);
    expect(state.balance(incoming(2))).toBe(100n);
    expect(state.balance(reserved(1))).toBe(0n);
  });

  it('refuses to answer for a decision it did not apply', () => {
    const state = new LedgerState([], []);
    const { decision } = applyOne(state, { id: 'w', type: 'withdraw', user_id: 1, amount: '1.00' });
    expect(decision.status).toBe('rejected');
    expect(() => state.postingBalances(decision)).toThrow(/did not apply/);
  });
});
