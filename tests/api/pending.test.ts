import { describe, expect, it } from 'vitest';
import { PendingCommands } from '../../src/api/pending.ts';
import { LoginThrottle } from '../../src/api/auth/throttle.ts';

describe('PendingCommands', () => {
  it('forgets the oldest entry past its size limit, and entries past their age', () => {
    const pending = new PendingCommands(2, 1_000);
    pending.add('a', 1, 0);
    pending.add('b', 2, 0);
    pending.add('c', 3, 0);
    expect([pending.owner('a', 10), pending.owner('b', 10), pending.owner('c', 10)]).toEqual([null, 2, 3]);
    expect(pending.owner('b', 2_000)).toBeNull();
  });
});

describe('LoginThrottle', () => {
  it('refuses after the failure limit within the window, and allows again after it', () => {
    const throttle = new LoginThrottle(3, 1_000, 10);
    for (let i = 0; i < 3; i += 1) throttle.recordFailure('k', i);
    expect(throttle.retryAfterMs('k', 10)).toBe(990);
    expect(throttle.retryAfterMs('k', 1_001)).toBe(0);
  });

  it('keeps at most keysMax keys', () => {
    const throttle = new LoginThrottle(1, 1_000, 2);
    throttle.recordFailure('a', 0);
    throttle.recordFailure('b', 0);
    throttle.recordFailure('c', 0);
    expect(throttle.retryAfterMs('a', 1)).toBe(0);
    expect(throttle.retryAfterMs('c', 1)).toBeGreaterThan(0);
  });
});
