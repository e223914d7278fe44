import { describe, expect, it } from 'vitest';
import { createCommandSchema, type Command } from '../../src/commands/schema.ts';
import { available, decide, reserved } from '../../src/ledger/core.ts';
import { balanceEventPayload, eventTypeOf, settleEntries } from '../../src/ledger/events.ts';
import { LedgerState } from '../../src/ledger/state.ts';

const schema = createCommandSchema({ amountMinorMax: 100_000_000_000 });
const LIMITS = { amountMinorMax: 100_000_000_000n, balanceMinorMax: 1_000_000_000_000_000n, alertsPerUserMax: 20 };

describe('balance events', () => {
  it("describes a transfer to its sender only, with the sender's row and balances, keys in a fixed order", () => {
    const state = new LedgerState([[available(1), 1_000n]], []);
    const transfer = schema.parse({ id: 'rent', type: 'transfer', user_id: 1, recipient_id: 2, amount: '2.50' });
    const decision = decide(state, transfer, LIMITS);
    state.apply(transfer.id, decision);
    const payload = balanceEventPayload({
      command: transfer,
      sequence: 7n,
      occurredAt: '2026-11-28T17:00:00.000Z',
      entries: decision.entries,
      balances: { available: state.balance(available(1)), reserved: state.balance(reserved(1)) },
    });
    expect(payload).toBe(
      '{"event_id":"rent:1","command_id":"rent","type":"transfer_out","user_id":1,"sequence":7,' +
        '"occurred_at":"2026-11-28T17:00:00.000Z","transactions":[{"transaction_type":"transfer_out","amount":"-2.50",' +
        '"service_id":null,"order_id":null,"counterparty_id":2,"comment":null}],' +
        '"balances":{"available":"7.50","reserved":"0.00"}}',
    );
  });

  it('names what happened: a settle is the transfer arriving, every other type is itself', () => {
    const settle = schema.parse({ id: '~settle:rent', type: 'settle', user_id: 2, amount: '2.50' }) as Extract<
      Command,
      { type: 'settle' }
    >;
    expect(eventTypeOf(settle)).toBe('transfer_in');
    expect(settleEntries(settle)).toEqual([
      {
        userId: 2,
        amount: 250n,
        type: 'transfer_in',
        serviceId: null,
        orderId: null,
        counterpartyId: null,
        comment: null,
      },
    ]);
    for (const type of ['deposit', 'withdraw'] as const)
      expect(eventTypeOf(schema.parse({ id: 'x', type, user_id: 1, amount: '1.00' }))).toBe(type);
    expect(eventTypeOf(schema.parse({ id: 'x', type: 'release', user_id: 1, service_id: 1, order_id: 1 }))).toBe(
      'release',
    );
  });
});
