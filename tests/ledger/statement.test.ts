import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMinor } from '../../src/commands/money.ts';
import { createCommandSchema, expireIdOf } from '../../src/commands/schema.ts';
import { available, decide, incoming, reserved, settleOf, type CommandOf, type Entry } from '../../src/ledger/core.ts';
import { LedgerState } from '../../src/ledger/state.ts';
import { monthBounds, NO_BALANCES, rowEffect, runningBalances } from '../../src/ledger/statement.ts';

const schema = createCommandSchema({ amountMinorMax: 100_000_000_000 });
const LIMITS = { amountMinorMax: 100_000_000_000n, balanceMinorMax: 1_000_000_000_000_000n, alertsPerUserMax: 20 };
const USERS = [1, 2, 3];

describe('rowEffect', () => {
  it('moves money between spendable and reserved as each kind of row does', () => {
    expect(rowEffect('deposit', 500n)).toEqual({ spendable: 500n, reserved: 0n });
    expect(rowEffect('withdraw', -200n)).toEqual({ spendable: -200n, reserved: 0n });
    expect(rowEffect('transfer_out', -30n)).toEqual({ spendable: -30n, reserved: 0n });
    expect(rowEffect('transfer_in', 30n)).toEqual({ spendable: 30n, reserved: 0n });
    expect(rowEffect('reserve', -300n)).toEqual({ spendable: -300n, reserved: 300n });
    expect(rowEffect('release', 100n)).toEqual({ spendable: 100n, reserved: -100n });
    expect(rowEffect('capture', -200n)).toEqual({ spendable: 0n, reserved: -200n });
    expect(rowEffect('expire', 300n)).toEqual({ spendable: 300n, reserved: -300n });
  });

  /**
   * The rows are one record of the money and the postings another. For random commands decided
   * by the ledger's own rules, the running balance through each user's rows must end at the
   * balances the postings left: available plus incoming, and reserved.
   */
  it("ends, through each user's rows, at the balances the ledger's postings left", () => {
    const step = fc.record({
      kind: fc.constantFrom('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer', 'settle', 'expire'),
      user: fc.constantFrom(...USERS),
      other: fc.constantFrom(...USERS),
      minor: fc.integer({ min: 1, max: 5_000 }),
      order: fc.integer({ min: 1, max: 2 }),
    });
    const applied: number[] = [];
    const expired: number[] = [];
    fc.assert(
      fc.property(fc.array(step, { minLength: 60, maxLength: 120 }), (steps) => {
        const state = new LedgerState([], []);
        const rows: Entry[] = [];
        const unsettled: string[] = [];
        const transfers = new Map<string, CommandOf<'transfer'>>();
        for (const [i, s] of steps.entries()) {
          const amount = formatMinor(BigInt(s.minor));
          const order = { user_id: s.user, service_id: 7, order_id: s.order };
          if (s.kind === 'transfer' && s.user === s.other) continue;
          if (s.kind === 'settle' && unsettled.length === 0) continue;
          const hold = state.openReservation(s.user, 7, s.order);
          if (s.kind === 'expire' && !hold) continue;
          const command =
            s.kind === 'settle'
              ? settleOf(transfers.get(unsettled.shift()!)!)
              : s.kind === 'expire'
                ? schema.parse({ id: expireIdOf(hold!.reserveCommandId), type: 'expire', ...order })
                : schema.parse(
                    {
                      deposit: { id: `${i}`, type: 'deposit', user_id: s.user, amount },
                      withdraw: { id: `${i}`, type: 'withdraw', user_id: s.user, amount },
                      reserve: { id: `${i}`, type: 'reserve', ...order, amount },
                      capture: { id: `${i}`, type: 'capture', ...order, amount },
                      release: { id: `${i}`, type: 'release', ...order },
                      transfer: { id: `${i}`, type: 'transfer', user_id: s.user, recipient_id: s.other, amount },
                    }[s.kind],
                  );
          const decision = decide(state, command, LIMITS);
          state.apply(command.id, decision);
          if (decision.status !== 'applied') continue;
          rows.push(...decision.entries);
          if (command.type === 'transfer') {
            transfers.set(command.id, command);
            unsettled.push(command.id);
          }
        }
        applied.push(rows.filter((r) => r.type === 'capture').length);
        expired.push(rows.filter((r) => r.type === 'expire').length);
        for (const user of USERS) {
          const own = rows.filter((r) => r.userId === user);
          expect(runningBalances(NO_BALANCES, own).at(-1) ?? NO_BALANCES).toEqual({
            spendable: state.balance(available(user)) + state.balance(incoming(user)),
            reserved: state.balance(reserved(user)),
          });
        }
      }),
      { numRuns: 300, seed: 20261129 },
    );
    // Most runs must have captured something, or the hardest row type went untested.
    expect(applied.filter((n) => n > 0).length).toBeGreaterThan(100);
    expect(expired.filter((n) => n > 0).length).toBeGreaterThan(100);
  });
});

describe('runningBalances', () => {
  it('starts from the opening balances and adds each row in order', () => {
    expect(
      runningBalances({ spendable: 1_000n, reserved: 50n }, [
        { type: 'reserve', amount: -300n },
        { type: 'capture', amount: -200n },
        { type: 'release', amount: 100n },
      ]),
    ).toEqual([
      { spendable: 700n, reserved: 350n },
      { spendable: 700n, reserved: 150n },
      { spendable: 800n, reserved: 50n },
    ]);
  });
});

describe('monthBounds', () => {
  it('gives the month and the next one, across a year end', () => {
    expect(monthBounds('2026-11')).toEqual({ from: [2026, 11], to: [2026, 12] });
    expect(monthBounds('2026-12')).toEqual({ from: [2026, 12], to: [2027, 1] });
  });
});
