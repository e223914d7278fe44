/**
 * The partition's state cache on its own: it stays within its bounds however many users pass
 * through it, hands out copies (a decision changes what it is given), and keeps what a chunk
 * left its users at.
 */
import { describe, expect, it } from 'vitest';
import { available, reserved } from '../../src/ledger/core.ts';
import type { LoadedState } from '../../src/ledger/decide-chunk.ts';
import { StateCache } from '../../src/ledger/state-cache.ts';

function loadedUser(userId: number, balance = 100n): LoadedState {
  const account = (key: ReturnType<typeof available>, id: number) => ({
    id,
    key,
    balance,
    version: 3n,
    alertCount: 0,
    frozenReason: null,
    chainHash: null,
  });
  return {
    stored: new Map(),
    accounts: new Map([
      [available(userId), account(available(userId), userId * 2)],
      [reserved(userId), account(reserved(userId), userId * 2 + 1)],
    ]),
    reservations: { open: [], expired: [], captured: [] },
    alerts: [],
  };
}

describe('the state cache', () => {
  it('holds at most its bound of users, orders and ids while 1,000,000 distinct users pass through', () => {
    const cache = new StateCache({ usersMax: 1_000, ordersMax: 500, commandIdsMax: 2_000 });
    const heapBefore = process.memoryUsage().heapUsed;
    for (let userId = 1; userId <= 1_000_000; userId++) {
      const order = { userId, serviceId: 1, orderId: userId };
      cache.absorbLoaded(loadedUser(userId), { users: [userId], orders: [order], shared: [] });
    }
    expect(cache.size).toEqual({ users: 1_000, orders: 500, shared: 0, commandIds: 0 });
    expect(cache.missing([1, 999_999, 1_000_000], [], [])).toEqual({ users: [1], orders: [], shared: [] });
    // A million users' worth would be hundreds of MB; a thousand is well under 50.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(50 * 1024 * 1024);
  }, 60_000);

  it('hands out copies: what a decision changes does not change the cache', () => {
    const cache = new StateCache({ usersMax: 10, ordersMax: 10, commandIdsMax: 10 });
    const loaded = loadedUser(5);
    const order = { userId: 5, serviceId: 2, orderId: 9 };
    loaded.reservations.open.push({
      id: 11,
      userId: 5,
      serviceId: 2,
      orderId: 9,
      amount: 40n,
      expiresInS: null,
      status: 'open',
      capturedAmount: 0n,
      reserveCommandId: 'r',
      closeCommandId: null,
    });
    cache.absorbLoaded(loaded, { users: [5], orders: [order], shared: [] });
    const first = cache.loaded([5], [order], []);
    first.reservations.open[0]!.status = 'captured';
    const second = cache.loaded([5], [order], []);
    expect(second.reservations.open[0]!.status).toBe('open');
    expect(second.accounts.get(available(5))!.balance).toBe(100n);
  });

  it('forgets a user and their orders when told to, so their next chunk reads them again', () => {
    const cache = new StateCache({ usersMax: 10, ordersMax: 10, commandIdsMax: 10 });
    const order = { userId: 6, serviceId: 1, orderId: 1 };
    cache.absorbLoaded(loadedUser(6), { users: [6], orders: [order], shared: [] });
    expect(cache.missing([6], [order], [])).toEqual({ users: [], orders: [], shared: [] });
    cache.evictUsers([6]);
    expect(cache.missing([6], [order], [])).toEqual({ users: [6], orders: [order], shared: [] });
  });
});
