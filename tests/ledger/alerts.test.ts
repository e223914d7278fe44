import { describe, expect, it } from 'vitest';
import { createCommandSchema } from '../../src/commands/schema.ts';
import { crossAlerts, isPast, type AlertState } from '../../src/ledger/alerts.ts';
import { available, decide, type LedgerLimits } from '../../src/ledger/core.ts';
import { LedgerState } from '../../src/ledger/state.ts';

const schema = createCommandSchema({ amountMinorMax: 100_000_000_000 });
const LIMITS: LedgerLimits = {
  amountMinorMax: 100_000_000_000n,
  balanceMinorMax: 1_000_000_000_000_000n,
  alertsPerUserMax: 2,
};

/** Decides and applies one command; returns its decision and the ids of the alerts it fired. */
function applyOne(state: LedgerState, input: Record<string, unknown>) {
  const command = schema.parse(input);
  const decision = decide(state, command, LIMITS);
  state.apply(command.id, decision);
  return { code: decision.code, fired: state.firedBy(decision).map((alert) => alert.id) };
}

const deposit = (id: string, amount: string) => ({ id, type: 'deposit', user_id: 1, amount });
const withdraw = (id: string, amount: string) => ({ id, type: 'withdraw', user_id: 1, amount });
const alert = (id: string, direction: string, threshold: string) => ({
  id,
  type: 'set_alert',
  user_id: 1,
  direction,
  threshold,
});

describe('isPast and crossAlerts', () => {
  const below: AlertState = { id: 'b', userId: 1, direction: 'below', threshold: 1_000n, past: false };

  it('counts a balance equal to the threshold as not past, in both directions', () => {
    expect(isPast(below, 1_000n)).toBe(false);
    expect(isPast(below, 999n)).toBe(true);
    expect(isPast({ ...below, direction: 'above' }, 1_000n)).toBe(false);
    expect(isPast({ ...below, direction: 'above' }, 1_001n)).toBe(true);
  });

  it('fires on the move into past only, and re-arms when the balance comes back', () => {
    const state = { ...below };
    const fired = [900n, 800n, 1_000n, 1_200n, 999n].map((balance) => crossAlerts([state], balance).fired.length);
    expect(fired).toEqual([1, 0, 0, 0, 1]);
  });
});

describe('threshold alerts in the ledger state', () => {
  it('fires a below alert once per crossing, not on every change while the balance stays below', () => {
    const state = new LedgerState([[available(1), 10_000n]], []);
    expect(applyOne(state, alert('low', 'below', '50.00'))).toEqual({ code: 'ok', fired: [] });
    const fired = [
      withdraw('w1', '30.00'), // 70.00
      withdraw('w2', '30.00'), // 40.00: crosses
      withdraw('w3', '10.00'), // 30.00: still below
      deposit('d1', '20.00'), // 50.00: back, not below
      withdraw('w4', '0.01'), // 49.99: crosses again
    ].map((input) => applyOne(state, input).fired);
    expect(fired).toEqual([[], ['low'], [], [], ['low']]);
  });

  it('fires an above alert when a deposit takes the balance over it', () => {
    const state = new LedgerState([[available(1), 0n]], []);
    applyOne(state, alert('high', 'above', '100.00'));
    expect(applyOne(state, deposit('d1', '100.00')).fired).toEqual([]);
    expect(applyOne(state, deposit('d2', '0.01')).fired).toEqual(['high']);
    expect(applyOne(state, deposit('d3', '5.00')).fired).toEqual([]);
  });

  it('does not fire for a balance already past at registration until it comes back and crosses', () => {
    const state = new LedgerState([[available(1), 1_000n]], []);
    applyOne(state, alert('low', 'below', '50.00'));
    expect(applyOne(state, withdraw('w1', '1.00')).fired).toEqual([]);
    expect(applyOne(state, deposit('d1', '60.00')).fired).toEqual([]);
    expect(applyOne(state, withdraw('w2', '30.00')).fired).toEqual(['low']);
  });

  it('fires on reserves and settles too: any change of the available balance', () => {
    const state = new LedgerState([[available(1), 10_000n]], []);
    applyOne(state, alert('low', 'below', '50.00'));
    const reserve = { id: 'r', type: 'reserve', user_id: 1, service_id: 1, order_id: 1, amount: '60.00' };
    expect(applyOne(state, reserve).fired).toEqual(['low']);
    applyOne(state, alert('high', 'above', '80.00'));
    const settle = { id: '~settle:t', type: 'settle', user_id: 1, amount: '45.00' };
    expect(applyOne(state, settle).fired).toEqual(['high']);
  });

  it('fires every alert a change crosses, ordered by id whatever the order they were loaded in', () => {
    const loaded: AlertState[] = [
      { id: 'z', userId: 1, direction: 'below', threshold: 5_000n, past: false },
      { id: 'a', userId: 1, direction: 'below', threshold: 4_000n, past: false },
    ];
    const state = new LedgerState([[available(1), 10_000n]], [], [], loaded);
    expect(applyOne(state, withdraw('w', '70.00')).fired).toEqual(['a', 'z']);
    expect(state.alertChanges().upserts.map((a) => [a.id, a.past])).toEqual([
      ['z', true],
      ['a', true],
    ]);
  });

  it('refuses an alert past ALERTS_PER_USER_MAX and a removal of an alert that does not exist', () => {
    const state = new LedgerState([[available(1), 0n]], []);
    expect(applyOne(state, alert('a1', 'below', '1.00')).code).toBe('ok');
    expect(applyOne(state, alert('a2', 'above', '1.00')).code).toBe('ok');
    expect(applyOne(state, alert('a3', 'above', '2.00')).code).toBe('alert_limit_exceeded');
    expect(applyOne(state, { id: 'rm1', type: 'remove_alert', user_id: 1, alert_id: 'a3' }).code).toBe(
      'alert_not_found',
    );
    expect(applyOne(state, { id: 'rm2', type: 'remove_alert', user_id: 1, alert_id: 'a1' }).code).toBe('ok');
    expect(applyOne(state, alert('a4', 'above', '3.00')).code).toBe('ok');
    const changes = state.alertChanges();
    expect(changes.upserts.map((a) => a.id)).toEqual(['a2', 'a4']);
    expect(changes.counts).toEqual(new Map([[1, 2]]));
  });

  it('stops firing a removed alert, and deletes it only if it was stored before the batch', () => {
    const loaded: AlertState[] = [{ id: 'old', userId: 1, direction: 'below', threshold: 5_000n, past: false }];
    const state = new LedgerState([[available(1), 10_000n]], [], [], loaded);
    applyOne(state, { id: 'rm', type: 'remove_alert', user_id: 1, alert_id: 'old' });
    expect(applyOne(state, withdraw('w', '90.00')).fired).toEqual([]);
    expect(state.alertChanges()).toEqual({ upserts: [], deletes: ['old'], counts: new Map([[1, 0]]) });
  });
});
