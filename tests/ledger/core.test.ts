import { describe, expect, it } from 'vitest';
import {
  commandFingerprint,
  createCommandSchema,
  expireIdOf,
  serializeCommand,
  type Command,
} from '../../src/commands/schema.ts';
import fc from 'fast-check';
import {
  available,
  decide,
  EXTERNAL_ACCOUNT,
  incoming,
  reserved,
  revenue,
  settleOf,
  settlesOf,
  type AccountKey,
} from '../../src/ledger/core.ts';
import { LedgerInvariantError, LedgerState } from '../../src/ledger/state.ts';

const schema = createCommandSchema({ amountMinorMax: 100_000_000_000 });
const LIMITS = { amountMinorMax: 100_000_000_000n, balanceMinorMax: 1_000_000_000_000_000n, alertsPerUserMax: 20 };
let sequence = 0;
function command(input: Record<string, unknown>): Command {
  return schema.parse({ id: `c${++sequence}`, user_id: 1, ...input });
}

/** Decides and applies a run of commands, as one batch would. */
function run(state: LedgerState, ...inputs: Array<Record<string, unknown>>) {
  return inputs.map((input) => {
    const cmd = command(input);
    const decision = decide(state, cmd, LIMITS);
    state.apply(cmd.id, decision);
    return decision;
  });
}

function stateWith(balances: Array<[AccountKey, bigint]> = []): LedgerState {
  return new LedgerState(balances, []);
}

function total(state: LedgerState, keys: AccountKey[]): bigint {
  return keys.reduce((sum, key) => sum + state.balance(key), 0n);
}

describe('the amount limit', () => {
  const limits = { ...LIMITS, amountMinorMax: 1_000n };
  const rich = () =>
    stateWith([
      [available(1), 1_000_000n],
      [reserved(1), 1_000_000n],
    ]);

  it('rejects every command naming more than AMOUNT_MINOR_MAX with amount_too_large, before any other rule', () => {
    const over = [
      { type: 'deposit', amount: '10.01' },
      { type: 'withdraw', amount: '10.01' },
      { type: 'reserve', service_id: 1, order_id: 1, amount: '10.01' },
      { type: 'transfer', recipient_id: 2, amount: '10.01' },
      { type: 'transfer', recipient_id: 1, amount: '10.01' },
      { type: 'set_alert', direction: 'below', threshold: '10.01' },
    ];
    for (const input of over)
      expect(decide(rich(), command(input), limits), input.type).toMatchObject({
        status: 'rejected',
        code: 'amount_too_large',
        postings: [],
      });
    expect(decide(rich(), command({ type: 'withdraw', amount: '10.00' }), limits)).toMatchObject({ status: 'applied' });
  });

  it('never refuses a capture for its amount: it is bounded by its reservation, made under the limit of its day', () => {
    // Past the amount check, the capture meets the reservation rules (here: there is none).
    const capture = command({ type: 'capture', service_id: 1, order_id: 1, amount: '50.00' });
    expect(decide(rich(), capture, limits)).toMatchObject({ status: 'rejected', code: 'reservation_not_found' });
  });

  it("never refuses a settle for its amount: the transfer's partition decided it", () => {
    const settle: Command = { id: '~settle:t', type: 'settle', user_id: 1, amount: 5_000n };
    expect(decide(stateWith([[incoming(1), 5_000n]]), settle, limits)).toMatchObject({ status: 'applied' });
  });
});

describe('the balance limit', () => {
  const small = { amountMinorMax: 100_000_000_000n, balanceMinorMax: 1_000n, alertsPerUserMax: 20 };

  it('rejects a deposit that would take available plus reserved past BALANCE_MINOR_MAX, and changes nothing', () => {
    const state = stateWith([
      [available(1), 600n],
      [reserved(1), 300n],
    ]);
    const over = decide(state, command({ type: 'deposit', amount: '1.01' }), small);
    expect(over).toMatchObject({ status: 'rejected', code: 'balance_limit_exceeded', postings: [] });
    expect(decide(state, command({ type: 'deposit', amount: '1.00' }), small)).toMatchObject({ status: 'applied' });
  });

  it("never refuses a settle: the transfer was decided on the sender's partition", () => {
    const state = stateWith([[available(1), 1_000n]]);
    expect(decide(state, { id: '~settle:t', type: 'settle', user_id: 1, amount: 500n }, small)).toMatchObject({
      status: 'applied',
    });
  });
});

describe('deposit and withdraw', () => {
  it('credits the available balance from the external account', () => {
    const state = stateWith();
    const [decision] = run(state, { type: 'deposit', amount: '10.00' });
    expect(decision).toMatchObject({ status: 'applied', code: 'ok' });
    expect(state.balance(available(1))).toBe(1000n);
    expect(state.balance(EXTERNAL_ACCOUNT)).toBe(-1000n);
    expect(decision!.entries).toEqual([expect.objectContaining({ userId: 1, amount: 1000n, type: 'deposit' })]);
  });

  it('withdraws what is available and refuses more with insufficient_funds', () => {
    const state = stateWith([[available(1), 500n]]);
    const [ok, tooMuch] = run(state, { type: 'withdraw', amount: '5.00' }, { type: 'withdraw', amount: '0.01' });
    expect(ok!.code).toBe('ok');
    expect(tooMuch).toMatchObject({ status: 'rejected', code: 'insufficient_funds', postings: [], entries: [] });
    expect(state.balance(available(1))).toBe(0n);
  });
});

describe('reservations', () => {
  it('moves a reserve from available to reserved, and refuses a second open one for the order', () => {
    const state = stateWith([[available(1), 1000n]]);
    const [first, second] = run(
      state,
      { type: 'reserve', service_id: 5, order_id: 9, amount: '3.00' },
      { type: 'reserve', service_id: 5, order_id: 9, amount: '1.00' },
    );
    expect(first!.code).toBe('ok');
    expect(second!.code).toBe('reservation_exists');
    expect(state.balance(available(1))).toBe(700n);
    expect(state.balance(reserved(1))).toBe(300n);
  });

  it('reports reservation_exists before insufficient_funds', () => {
    const state = stateWith([[available(1), 100n]]);
    const [, second] = run(
      state,
      { type: 'reserve', service_id: 5, order_id: 9, amount: '1.00' },
      { type: 'reserve', service_id: 5, order_id: 9, amount: '50.00' },
    );
    expect(second!.code).toBe('reservation_exists');
  });

  it('refuses a reserve larger than the available balance', () => {
    const [decision] = run(stateWith([[available(1), 100n]]), {
      type: 'reserve',
      service_id: 5,
      order_id: 9,
      amount: '1.01',
    });
    expect(decision!.code).toBe('insufficient_funds');
  });

  it('captures part of a hold into revenue and returns the remainder', () => {
    const state = stateWith([[available(1), 1000n]]);
    const [, capture] = run(
      state,
      { type: 'reserve', service_id: 5, order_id: 9, amount: '6.00' },
      { type: 'capture', service_id: 5, order_id: 9, amount: '4.00' },
    );
    expect(capture!.code).toBe('ok');
    expect(state.balance(revenue(5))).toBe(400n);
    expect(state.balance(reserved(1))).toBe(0n);
    expect(state.balance(available(1))).toBe(600n);
    expect(capture!.entries.map((e) => [e.type, e.amount])).toEqual([
      ['capture', -400n],
      ['release', 200n],
    ]);
    expect(state.openReservation(1, 5, 9)).toBeUndefined();
  });

  it('refuses a capture larger than the reservation, and one for an order never reserved', () => {
    const state = stateWith([[available(1), 1000n]]);
    const [, tooMuch, unknown] = run(
      state,
      { type: 'reserve', service_id: 5, order_id: 9, amount: '6.00' },
      { type: 'capture', service_id: 5, order_id: 9, amount: '6.01' },
      { type: 'capture', service_id: 5, order_id: 10, amount: '1.00' },
    );
    expect(tooMuch!.code).toBe('amount_exceeds_reservation');
    expect(unknown!.code).toBe('reservation_not_found');
    expect(state.balance(reserved(1))).toBe(600n);
  });

  it('releases a hold back to available, once', () => {
    const state = stateWith([[available(1), 1000n]]);
    const [, release, again] = run(
      state,
      { type: 'reserve', service_id: 5, order_id: 9, amount: '6.00' },
      { type: 'release', service_id: 5, order_id: 9 },
      { type: 'release', service_id: 5, order_id: 9 },
    );
    expect(release!.code).toBe('ok');
    expect(again!.code).toBe('reservation_not_found');
    expect(state.balance(available(1))).toBe(1000n);
    expect(state.changedReservations).toHaveLength(1);
    expect(state.changedReservations[0]).toMatchObject({ status: 'released', id: null });
  });

  it('allows the same order to be reserved again once closed', () => {
    const state = stateWith([[available(1), 1000n]]);
    const decisions = run(
      state,
      { type: 'reserve', service_id: 5, order_id: 9, amount: '1.00' },
      { type: 'release', service_id: 5, order_id: 9 },
      { type: 'reserve', service_id: 5, order_id: 9, amount: '2.00' },
    );
    expect(decisions.map((d) => d.code)).toEqual(['ok', 'ok', 'ok']);
    expect(state.changedReservations.map((r) => r.status)).toEqual(['released', 'open']);
  });

  it('closes a reservation loaded from the database and lists it as changed', () => {
    const state = new LedgerState(
      [[reserved(1), 500n]],
      [
        {
          id: 42,
          userId: 1,
          serviceId: 5,
          orderId: 9,
          amount: 500n,
          expiresInS: null,
          status: 'open',
          capturedAmount: 0n,
          reserveCommandId: 'old',
          closeCommandId: null,
        },
      ],
    );
    const [capture] = run(state, { type: 'capture', service_id: 5, order_id: 9, amount: '5.00' });
    expect(capture!.code).toBe('ok');
    expect(state.changedReservations).toEqual([
      expect.objectContaining({ id: 42, status: 'captured', capturedAmount: 500n }),
    ]);
  });
});

describe('holds that expire', () => {
  /** Reserves 3.00 of 10.00 for order 9 with an expiry; returns the state and the expire command. */
  function heldWithExpiry() {
    const state = stateWith([[available(1), 1_000n]]);
    const reserve = command({ type: 'reserve', service_id: 5, order_id: 9, amount: '3.00', expires_in_s: 60 });
    const decision = decide(state, reserve, LIMITS);
    state.apply(reserve.id, decision);
    const expire = schema.parse({ id: expireIdOf(reserve.id), type: 'expire', user_id: 1, service_id: 5, order_id: 9 });
    return { state, decision, expire };
  }

  it('records the expiry with the hold, and the expire returns it to available with an expire row', () => {
    const { state, decision, expire } = heldWithExpiry();
    expect(decision.reservation).toMatchObject({ kind: 'open', expiresInS: 60 });
    const expired = decide(state, expire, LIMITS);
    state.apply(expire.id, expired);
    expect(expired).toMatchObject({ status: 'applied', entries: [{ type: 'expire', amount: 300n }] });
    expect([state.balance(available(1)), state.balance(reserved(1))]).toEqual([1_000n, 0n]);
    expect(state.changedReservations.map((r) => r.status)).toEqual(['expired']);
  });

  it('rejects a capture or a release after the expire with reservation_expired', () => {
    const { state, expire } = heldWithExpiry();
    state.apply(expire.id, decide(state, expire, LIMITS));
    const [capture, release] = run(
      state,
      { type: 'capture', service_id: 5, order_id: 9, amount: '1.00' },
      { type: 'release', service_id: 5, order_id: 9 },
    );
    expect([capture!.code, release!.code]).toEqual(['reservation_expired', 'reservation_expired']);
    expect(run(state, { type: 'capture', service_id: 5, order_id: 8, amount: '1.00' })[0]!.code).toBe(
      'reservation_not_found',
    );
  });

  it('lets a capture ordered before the expire win; the expire then finds nothing', () => {
    const { state, expire } = heldWithExpiry();
    expect(run(state, { type: 'capture', service_id: 5, order_id: 9, amount: '1.00' })[0]!.code).toBe('ok');
    const late = decide(state, expire, LIMITS);
    expect(late.code).toBe('reservation_not_found');
    expect(state.balance(available(1))).toBe(900n);
  });

  it('never returns a newer hold of the same order: the expire names the reserve that opened its hold', () => {
    const { state, expire } = heldWithExpiry();
    run(
      state,
      { type: 'release', service_id: 5, order_id: 9 },
      { type: 'reserve', service_id: 5, order_id: 9, amount: '2.00' },
    );
    expect(decide(state, expire, LIMITS).code).toBe('reservation_not_found');
    expect(state.balance(reserved(1))).toBe(200n);
  });

  it('knows an order whose hold expired in an earlier batch, from what the database loaded', () => {
    const state = new LedgerState([[available(1), 1_000n]], [], ['1:5:9']);
    expect(run(state, { type: 'release', service_id: 5, order_id: 9 })[0]!.code).toBe('reservation_expired');
    expect(run(state, { type: 'reserve', service_id: 5, order_id: 9, amount: '1.00' })[0]!.code).toBe('ok');
    expect(run(state, { type: 'release', service_id: 5, order_id: 9 })[0]!.code).toBe('ok');
  });

  it('refuses an expiry beyond 31 days or below a second, and an expire id a client could make', () => {
    for (const expires_in_s of [0, 2_678_401, 1.5, '60'])
      expect(() => command({ type: 'reserve', service_id: 5, order_id: 9, amount: '1.00', expires_in_s })).toThrow();
    expect(() => schema.parse({ id: 'plain', type: 'expire', user_id: 1, service_id: 5, order_id: 9 })).toThrow();
  });
});

describe('refunds', () => {
  /** User 1 with 10.00, an order 9 of service 5 reserved for 6.00 and captured for 5.00. */
  function captured(): LedgerState {
    const state = stateWith([[available(1), 1000n]]);
    run(
      state,
      { type: 'reserve', service_id: 5, order_id: 9, amount: '6.00' },
      { type: 'capture', service_id: 5, order_id: 9, amount: '5.00' },
    );
    return state;
  }

  it("gives back part of a capture from the service's revenue to available, with a refund row", () => {
    const state = captured();
    const [refund] = run(state, { type: 'refund', service_id: 5, order_id: 9, amount: '2.00', comment: 'broken' });
    expect(refund).toMatchObject({ status: 'applied', code: 'ok' });
    expect(refund!.postings).toEqual([{ debit: revenue(5), credit: available(1), amount: 200n }]);
    expect(refund!.entries.map((e) => [e.type, e.amount, e.serviceId, e.orderId, e.comment])).toEqual([
      ['refund', 200n, 5, 9, 'broken'],
    ]);
    expect(state.balance(revenue(5))).toBe(300n);
    expect(state.balance(available(1))).toBe(700n);
    expect(state.refunds()).toEqual([{ userId: 1, serviceId: 5, orderId: 9, amount: 200n }]);
  });

  it('allows partial refunds up to the capture and refuses one cent more with refund_exceeds_capture', () => {
    const state = captured();
    const codes = run(
      state,
      { type: 'refund', service_id: 5, order_id: 9, amount: '3.00' },
      { type: 'refund', service_id: 5, order_id: 9, amount: '2.01' },
      { type: 'refund', service_id: 5, order_id: 9, amount: '2.00' },
      { type: 'refund', service_id: 5, order_id: 9, amount: '0.01' },
    ).map((d) => d.code);
    expect(codes).toEqual(['ok', 'refund_exceeds_capture', 'ok', 'refund_exceeds_capture']);
    expect(state.balance(revenue(5))).toBe(0n);
    // 10.00, less the 6.00 hold, plus its 1.00 remainder, plus 5.00 of refunds.
    expect(state.balance(available(1))).toBe(1000n);
  });

  it('refuses a refund of an order that is open, released, expired, unknown or of another service with order_not_captured', () => {
    const state = stateWith([[available(1), 1000n]]);
    const codes = run(
      state,
      { type: 'refund', service_id: 5, order_id: 1, amount: '1.00' },
      { type: 'reserve', service_id: 5, order_id: 2, amount: '1.00' },
      { type: 'refund', service_id: 5, order_id: 2, amount: '1.00' },
      { type: 'release', service_id: 5, order_id: 2 },
      { type: 'refund', service_id: 5, order_id: 2, amount: '1.00' },
      { type: 'reserve', service_id: 5, order_id: 3, amount: '1.00' },
      { type: 'capture', service_id: 5, order_id: 3, amount: '1.00' },
      { type: 'refund', service_id: 6, order_id: 3, amount: '1.00' },
    ).map((d) => d.code);
    expect(codes).toEqual([
      'order_not_captured',
      'ok',
      'order_not_captured',
      'ok',
      'order_not_captured',
      'ok',
      'ok',
      'order_not_captured',
    ]);
  });

  it('bounds refunds by all captures of the order: a new hold of the same order id blocks none of them', () => {
    const state = captured();
    const codes = run(
      state,
      { type: 'reserve', service_id: 5, order_id: 9, amount: '1.00' },
      { type: 'refund', service_id: 5, order_id: 9, amount: '1.00' },
      { type: 'capture', service_id: 5, order_id: 9, amount: '0.50' },
      { type: 'refund', service_id: 5, order_id: 9, amount: '4.51' },
      { type: 'refund', service_id: 5, order_id: 9, amount: '4.50' },
      { type: 'refund', service_id: 5, order_id: 9, amount: '0.01' },
    ).map((d) => d.code);
    // Captured 5.00 and then 0.50: 5.50 in all, refunded 1.00 + 4.50.
    expect(codes).toEqual(['ok', 'ok', 'ok', 'refund_exceeds_capture', 'ok', 'refund_exceeds_capture']);
    expect(state.refunds()).toEqual([{ userId: 1, serviceId: 5, orderId: 9, amount: 550n }]);
  });

  it('refunds a capture loaded from the database within what is left of it', () => {
    const state = new LedgerState([[revenue(5), 500n]], [], [], [], {
      captured: [{ userId: 1, serviceId: 5, orderId: 9, capturedAmount: 500n, refundedAmount: 400n }],
    });
    const codes = run(
      state,
      { type: 'refund', service_id: 5, order_id: 9, amount: '1.01' },
      { type: 'refund', service_id: 5, order_id: 9, amount: '1.00' },
    ).map((d) => d.code);
    expect(codes).toEqual(['refund_exceeds_capture', 'ok']);
    expect(state.refunds()).toEqual([{ userId: 1, serviceId: 5, orderId: 9, amount: 100n }]);
  });

  it('is not bounded by AMOUNT_MINOR_MAX: the capture it gives back was', () => {
    const state = captured();
    const decision = decide(state, command({ type: 'refund', service_id: 5, order_id: 9, amount: '5.00' }), {
      ...LIMITS,
      amountMinorMax: 100n,
    });
    expect(decision.code).toBe('ok');
  });

  it('refuses to apply a refund decision the state does not allow (a second look behind decide)', () => {
    const state = captured();
    const forged = {
      ...decide(state, command({ type: 'refund', service_id: 5, order_id: 9, amount: '5.00' }), LIMITS),
      refund: { userId: 1, serviceId: 5, orderId: 9, amount: 501n },
    };
    expect(() => state.apply('forged', forged)).toThrow(LedgerInvariantError);
  });
});

describe('frozen accounts', () => {
  const rich = () =>
    stateWith([
      [available(1), 10_000n],
      [reserved(1), 0n],
    ]);

  it('rejects withdraw, transfer out and reserve with account_frozen, and applies deposits, settles, releases, captures and refunds', () => {
    const state = rich();
    run(state, { type: 'reserve', service_id: 5, order_id: 1, amount: '10.00' });
    run(state, { type: 'reserve', service_id: 5, order_id: 2, amount: '10.00' });
    run(state, { type: 'reserve', service_id: 5, order_id: 3, amount: '10.00' });
    run(state, { type: 'capture', service_id: 5, order_id: 3, amount: '10.00' });
    const [freeze] = run(state, { type: 'freeze', reason: 'chargeback investigation' });
    expect(freeze).toMatchObject({ status: 'applied', postings: [], freeze: { userId: 1, frozen: true } });
    expect(state.frozenReason(1)).toBe('chargeback investigation');
    const stopped = run(
      state,
      { type: 'withdraw', amount: '1.00' },
      { type: 'transfer', recipient_id: 2, amount: '1.00' },
      { type: 'reserve', service_id: 5, order_id: 4, amount: '1.00' },
    ).map((d) => d.code);
    expect(stopped).toEqual(['account_frozen', 'account_frozen', 'account_frozen']);
    const allowed = run(
      state,
      { type: 'deposit', amount: '1.00' },
      { type: 'capture', service_id: 5, order_id: 1, amount: '5.00' },
      { type: 'release', service_id: 5, order_id: 2 },
      { type: 'refund', service_id: 5, order_id: 3, amount: '10.00' },
    ).map((d) => d.code);
    expect(allowed).toEqual(['ok', 'ok', 'ok', 'ok']);
    const settle = settleOf(command({ type: 'transfer', user_id: 2, recipient_id: 1, amount: '3.00' }) as never);
    expect(decide(state, settle, LIMITS).code).toBe('ok');
  });

  it('lets everything through again after an unfreeze, and refuses a second freeze or an unfreeze of an open account', () => {
    const state = rich();
    const codes = run(
      state,
      { type: 'unfreeze' },
      { type: 'freeze', reason: 'a' },
      { type: 'freeze', reason: 'b' },
      { type: 'unfreeze', reason: 'cleared' },
      { type: 'withdraw', amount: '1.00' },
    ).map((d) => d.code);
    expect(codes).toEqual(['account_not_frozen', 'ok', 'account_already_frozen', 'ok', 'ok']);
    expect(state.frozenReason(1)).toBeNull();
    expect(state.freezes.map((f) => [f.frozen, f.reason])).toEqual([
      [true, 'a'],
      [false, 'cleared'],
    ]);
    expect(state.frozenAfter()).toEqual(new Map([[1, null]]));
  });

  it('stops only the frozen user: another user on the same state still withdraws', () => {
    const state = new LedgerState(
      [
        [available(1), 1000n],
        [available(2), 1000n],
      ],
      [],
      [],
      [],
      { frozen: [[1, 'loaded from the database']] },
    );
    const frozen = decide(state, command({ type: 'withdraw', amount: '1.00' }), LIMITS);
    const other = decide(state, command({ type: 'withdraw', user_id: 2, amount: '1.00' }), LIMITS);
    expect([frozen.code, other.code]).toEqual(['account_frozen', 'ok']);
  });

  it('requires a reason of 1-500 storable characters to freeze', () => {
    for (const reason of [undefined, '', 'x'.repeat(501), 'nul\u0000'])
      expect(() => command({ type: 'freeze', reason }), JSON.stringify(reason)).toThrow();
  });
});

describe('transfer', () => {
  it("debits the sender, credits the recipient's incoming, and records both sides", () => {
    const state = stateWith([[available(1), 1000n]]);
    const [decision] = run(state, { type: 'transfer', recipient_id: 2, amount: '2.50', comment: 'lunch' });
    expect(state.balance(available(1))).toBe(750n);
    expect(state.balance(incoming(2))).toBe(250n);
    expect(state.balance(available(2))).toBe(0n);
    expect(decision!.entries.map((e) => [e.userId, e.type, e.amount, e.counterpartyId, e.comment])).toEqual([
      [1, 'transfer_out', -250n, 2, 'lunch'],
      [2, 'transfer_in', 250n, 1, 'lunch'],
    ]);
  });

  it('refuses a transfer to oneself with same_account, before checking funds', () => {
    const [decision] = run(stateWith(), { type: 'transfer', recipient_id: 1, amount: '1.00' });
    expect(decision!.code).toBe('same_account');
  });

  it('refuses a transfer of more than is available', () => {
    const [decision] = run(stateWith([[available(1), 99n]]), { type: 'transfer', recipient_id: 2, amount: '1.00' });
    expect(decision!.code).toBe('insufficient_funds');
  });
});

describe('split payments', () => {
  const split = (recipients: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) => ({
    type: 'transfer',
    recipients,
    ...extra,
  });

  it('debits the sender the sum of the legs in one decision and credits each recipient into incoming', () => {
    const state = stateWith([[available(1), 10_000n]]);
    const [decision] = run(
      state,
      split(
        [
          { recipient_id: 2, amount: '90.00' },
          { recipient_id: 3, amount: '10.00', comment: 'platform fee' },
        ],
        { comment: 'order 77' },
      ),
    );
    expect(decision).toMatchObject({ status: 'applied', code: 'ok' });
    expect(decision!.postings).toEqual([
      { debit: available(1), credit: incoming(2), amount: 9_000n },
      { debit: available(1), credit: incoming(3), amount: 1_000n },
    ]);
    expect(decision!.entries.map((e) => [e.userId, e.type, e.amount, e.counterpartyId, e.comment])).toEqual([
      [1, 'transfer_out', -9_000n, 2, 'order 77'],
      [2, 'transfer_in', 9_000n, 1, 'order 77'],
      [1, 'transfer_out', -1_000n, 3, 'platform fee'],
      [3, 'transfer_in', 1_000n, 1, 'platform fee'],
    ]);
    expect([state.balance(available(1)), state.balance(incoming(2)), state.balance(incoming(3))]).toEqual([
      0n,
      9_000n,
      1_000n,
    ]);
  });

  it('moves nothing when the sender cannot pay the whole, even if one leg would fit', () => {
    const state = stateWith([[available(1), 9_999n]]);
    const [decision] = run(
      state,
      split([
        { recipient_id: 2, amount: '90.00' },
        { recipient_id: 3, amount: '10.00' },
      ]),
    );
    expect([decision!.code, decision!.postings]).toEqual(['insufficient_funds', []]);
    expect(state.balance(available(1))).toBe(9_999n);
  });

  it('refuses the sender among the recipients with same_account, and a total over AMOUNT_MINOR_MAX', () => {
    const state = stateWith([[available(1), 10_000n]]);
    expect(
      run(
        state,
        split([
          { recipient_id: 2, amount: '1.00' },
          { recipient_id: 1, amount: '1.00' },
        ]),
      )[0]!.code,
    ).toBe('same_account');
    const limits = { ...LIMITS, amountMinorMax: 1_000n };
    const legs = command(
      split([
        { recipient_id: 2, amount: '6.00' },
        { recipient_id: 3, amount: '6.00' },
      ]),
    );
    expect(decide(state, legs, limits).code).toBe('amount_too_large');
  });

  it('has one settle per leg, each id naming its recipient; a one-recipient transfer keeps its one settle id', () => {
    const transfer = command(
      split([
        { recipient_id: 2, amount: '1.00' },
        { recipient_id: 3, amount: '2.00' },
      ]),
    );
    expect(settlesOf(transfer as never)).toEqual([
      { id: `~settle:${transfer.id}#2`, type: 'settle', user_id: 2, amount: 100n },
      { id: `~settle:${transfer.id}#3`, type: 'settle', user_id: 3, amount: 200n },
    ]);
    const single = command({ type: 'transfer', recipient_id: 2, amount: '1.00' });
    expect(settlesOf(single as never)).toEqual([
      { id: `~settle:${single.id}`, type: 'settle', user_id: 2, amount: 100n },
    ]);
    for (const settle of settlesOf(transfer as never))
      expect(schema.parse(JSON.parse(serializeCommand(settle))).id).toBe(settle.id);
  });

  it('refuses by schema a recipient named twice, both forms or neither, and more than 100 legs', () => {
    const bad = [
      split([
        { recipient_id: 2, amount: '1.00' },
        { recipient_id: 2, amount: '2.00' },
      ]),
      split([{ recipient_id: 2, amount: '1.00' }], { recipient_id: 3, amount: '1.00' }),
      { type: 'transfer' },
      { type: 'transfer', recipient_id: 2 },
      split([]),
      split(Array.from({ length: 101 }, (_, i) => ({ recipient_id: i + 2, amount: '1.00' }))),
    ];
    for (const input of bad) expect(() => command(input), JSON.stringify(input).slice(0, 80)).toThrow();
  });

  it('takes a different fingerprint for different legs under the same id', () => {
    const a = schema.parse({ id: 'same', user_id: 1, ...split([{ recipient_id: 2, amount: '1.00' }]) });
    const b = schema.parse({ id: 'same', user_id: 1, ...split([{ recipient_id: 3, amount: '1.00' }]) });
    const c = schema.parse({ id: 'same', user_id: 1, type: 'transfer', recipient_id: 2, amount: '1.00' });
    expect(new Set([commandFingerprint(a), commandFingerprint(b), commandFingerprint(c)]).size).toBe(3);
  });
});

describe('settle', () => {
  it('derives its id from the transfer and moves the amount from incoming to available', () => {
    const transfer = command({ type: 'transfer', recipient_id: 2, amount: '2.50' });
    if (transfer.type !== 'transfer') throw new Error('not a transfer');
    const settle = settleOf(transfer);
    expect(settle).toEqual({ id: `~settle:${transfer.id}`, type: 'settle', user_id: 2, amount: 250n });
    expect(schema.parse({ ...settle, amount: '2.50' })).toEqual(settle);
    const state = stateWith([[incoming(2), 250n]]);
    const decision = decide(state, settle, LIMITS);
    state.apply(settle.id, decision);
    expect(decision).toMatchObject({ status: 'applied', entries: [] });
    expect([state.balance(incoming(2)), state.balance(available(2))]).toEqual([0n, 250n]);
  });

  it('applies even before its transfer, as a replay running one partition ahead does', () => {
    const state = stateWith([[available(1), 100n]]);
    const [decision] = run(state, { id: '~settle:t9', type: 'settle', user_id: 2, amount: '1.00' });
    expect(decision!.status).toBe('applied');
    expect(state.balance(incoming(2))).toBe(-100n);
    const [transfer] = run(state, { type: 'transfer', user_id: 1, recipient_id: 2, amount: '1.00' });
    expect(transfer!.status).toBe('applied');
    expect([state.balance(incoming(2)), state.balance(available(2)), state.balance(available(1))]).toEqual([
      0n,
      100n,
      0n,
    ]);
  });

  it('accepts an amount over AMOUNT_MINOR_MAX, which may have been lowered after the transfer', () => {
    const strict = createCommandSchema({ amountMinorMax: 100 });
    expect(strict.safeParse({ id: '~settle:t1', type: 'settle', user_id: 2, amount: '5.00' }).success).toBe(true);
    expect(strict.safeParse({ id: 't1', type: 'deposit', user_id: 2, amount: '5.00' }).success).toBe(false);
  });

  it('is not a client id: a plain id, or a settle id on another type, is refused by the schema', () => {
    expect(schema.safeParse({ id: 'plain', type: 'settle', user_id: 2, amount: '1.00' }).success).toBe(false);
    expect(schema.safeParse({ id: '~settle:x', type: 'deposit', user_id: 2, amount: '1.00' }).success).toBe(false);
  });
});

describe('partition independence', () => {
  // User 1's commands are one partition, user 2's another. However a live run or a replay
  // interleaves them, every decision and every final balance must come out the same: that is
  // what makes a rebuild from the log equal to the live ledger.
  const userOne = [
    { type: 'deposit', user_id: 1, amount: '50.00' },
    { type: 'transfer', user_id: 1, recipient_id: 2, amount: '30.00' },
    { type: 'withdraw', user_id: 1, amount: '25.00' },
    { type: 'transfer', user_id: 1, recipient_id: 2, amount: '10.00' },
  ];
  const userTwo = [
    { type: 'withdraw', user_id: 2, amount: '5.00' },
    { id: '~settle:p1', type: 'settle', user_id: 2, amount: '30.00' },
    { type: 'withdraw', user_id: 2, amount: '20.00' },
    { type: 'transfer', user_id: 2, recipient_id: 1, amount: '20.00' },
    { id: '~settle:p3', type: 'settle', user_id: 2, amount: '10.00' },
    { type: 'reserve', user_id: 2, service_id: 5, order_id: 1, amount: '15.00' },
  ];
  const keys: AccountKey[] = [available(1), available(2), incoming(1), incoming(2), reserved(2), EXTERNAL_ACCOUNT];

  function runInterleaving(takeFromOne: boolean[]) {
    const state = stateWith();
    const queues = [userOne.map((c, i) => ({ id: `p${i}`, ...c })), userTwo.map((c, i) => ({ id: `q${i}`, ...c }))];
    const codes: string[] = [];
    for (const fromOne of takeFromOne) {
      const queue = fromOne && queues[0]!.length > 0 ? queues[0]! : queues[1]!.length > 0 ? queues[1]! : queues[0]!;
      const cmd = schema.parse(queue.shift());
      const decision = decide(state, cmd, LIMITS);
      state.apply(cmd.id, decision);
      codes.push(`${cmd.id}:${decision.code}`);
    }
    return { codes: codes.sort(), balances: keys.map((key) => state.balance(key)) };
  }

  it('decides every command the same under any interleaving of the two partitions', () => {
    const steps = userOne.length + userTwo.length;
    const reference = runInterleaving(Array.from({ length: steps }, () => true));
    expect(reference.balances.reduce((a, b) => a + b, 0n)).toBe(0n);
    fc.assert(
      fc.property(fc.array(fc.boolean(), { minLength: steps, maxLength: steps }), (order) => {
        expect(runInterleaving(order)).toEqual(reference);
      }),
      { numRuns: 500 },
    );
  });
});

describe('conservation', () => {
  it('keeps the sum of all balances at zero through any run of commands', () => {
    const state = stateWith();
    const keys: AccountKey[] = [
      EXTERNAL_ACCOUNT,
      available(1),
      available(2),
      incoming(2),
      reserved(1),
      reserved(2),
      revenue(5),
    ];
    run(
      state,
      { type: 'deposit', amount: '100.00' },
      { type: 'transfer', recipient_id: 2, amount: '30.00' },
      { type: 'reserve', service_id: 5, order_id: 1, amount: '20.00' },
      { type: 'capture', service_id: 5, order_id: 1, amount: '15.00' },
      { type: 'withdraw', amount: '10.00' },
      { type: 'withdraw', amount: '1000.00' },
    );
    expect(total(state, keys)).toBe(0n);
    expect(state.balance(available(1))).toBe(100_00n - 30_00n - 20_00n + 5_00n - 10_00n);
    expect(state.changedAccounts().reduce((sum, account) => sum + account.delta, 0n)).toBe(0n);
  });

  it('refuses to apply a decision that would overdraw a user', () => {
    const state = stateWith();
    const overdraw = {
      status: 'applied' as const,
      code: 'ok' as const,
      message: '',
      postings: [{ debit: available(1), credit: EXTERNAL_ACCOUNT, amount: 1n }],
      entries: [],
      reservation: null,
    };
    expect(() => state.apply('bad', overdraw)).toThrow(LedgerInvariantError);
  });
});
