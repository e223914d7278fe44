import { describe, expect, it } from 'vitest';
import { DEFAULT_THROTTLE_LIMITS, LoginThrottle, type ThrottleLimits } from '../../../src/api/auth/throttle.ts';

const LIMITS: ThrottleLimits = {
  freeFailures: 2,
  baseDelayMs: 1_000,
  delayMsMax: 8_000,
  addressAttemptsMax: 50,
  addressWindowMs: 60_000,
  accountFreeFailures: 4,
  keysMax: 100,
};

describe('LoginThrottle', () => {
  it('counts an attempt when it begins, so parallel attempts cannot all pass one check', () => {
    const throttle = new LoginThrottle(LIMITS);
    // Three attempts at the same instant, none finished: the third must already wait.
    expect([
      throttle.begin('alice', '10.0.0.1', 0),
      throttle.begin('alice', '10.0.0.1', 0),
      throttle.begin('alice', '10.0.0.1', 0),
    ]).toEqual([0, 0, 1_000]);
  });

  it('slows the same (username, address) down progressively, up to the cap', () => {
    const throttle = new LoginThrottle(LIMITS);
    let now = 0;
    const waits: number[] = [];
    for (let i = 0; i < 7; i += 1) {
      const wait = throttle.begin('alice', '10.0.0.1', now);
      waits.push(wait);
      now += wait;
      if (wait > 0) expect(throttle.begin('alice', '10.0.0.1', now)).toBe(0);
    }
    expect(waits).toEqual([0, 0, 1_000, 2_000, 4_000, 8_000, 8_000]);
  });

  it('never slows another address down for the same username: no lockout of the owner', () => {
    const throttle = new LoginThrottle(LIMITS);
    for (let i = 0; i < 10; i += 1) throttle.begin('alice', '203.0.113.9', 0);
    expect(throttle.begin('alice', '10.0.0.1', 0)).toBe(0);
  });

  it('clears the failures of a pair on success', () => {
    const throttle = new LoginThrottle(LIMITS);
    for (let i = 0; i < 3; i += 1) throttle.begin('alice', '10.0.0.1', 0);
    throttle.succeeded('alice', '10.0.0.1');
    expect(throttle.begin('alice', '10.0.0.1', 0)).toBe(0);
  });

  it('bounds one address over all usernames (spraying)', () => {
    const throttle = new LoginThrottle({ ...LIMITS, addressAttemptsMax: 5 });
    for (let i = 0; i < 5; i += 1) expect(throttle.begin(`user-${i}`, '203.0.113.9', i)).toBe(0);
    expect(throttle.begin('user-99', '203.0.113.9', 10)).toBe(60_000 - 10);
  });

  it('keeps a locked account locked through 100,001 junk sign-ins from rotating addresses', () => {
    const limits = DEFAULT_THROTTLE_LIMITS;
    const throttle = new LoginThrottle(limits);
    const address = (i: number) => `2001:db8:${Math.floor(i / 65_536).toString(16)}::${(i % 65_536).toString(16)}`;
    for (let i = 0; i < limits.accountFreeFailures; i += 1) expect(throttle.begin('victim', address(i), 0)).toBe(0);
    expect(throttle.accountWaitMs('victim', 0)).toBeGreaterThan(0);
    // More junk usernames than either map holds, each from an address of its own.
    for (let i = 0; i <= limits.keysMax; i += 1) throttle.begin(`junk-${i}`, address(1_000_000 + i), 0);
    // The next guess at the victim, from yet another address, is still held back (a 429).
    expect(throttle.begin('victim', address(9_999_999), 1)).toBeGreaterThan(0);
  });

  it('keeps at most keysMax pairs of each kind: counts that delay nobody, and locked ones', () => {
    const throttle = new LoginThrottle({ ...LIMITS, keysMax: 2, freeFailures: 1 });
    throttle.begin('a', 'x', 0);
    throttle.begin('b', 'x', 0);
    throttle.begin('c', 'x', 0);
    expect(throttle.begin('a', 'x', 1)).toBe(0);
    expect(throttle.begin('c', 'x', 1)).toBeGreaterThan(0);
    // With freeFailures 2, one failure delays nobody: those counts make room among themselves.
    const tiers = new LoginThrottle({ ...LIMITS, keysMax: 2, freeFailures: 2, addressAttemptsMax: 1_000 });
    tiers.begin('locked', 'x', 0);
    tiers.begin('locked', 'x', 0);
    for (const junk of ['j1', 'j2', 'j3', 'j4']) tiers.begin(junk, 'x', 0);
    expect(tiers.begin('locked', 'x', 1)).toBeGreaterThan(0);
  });

  it('bounds one account over every address: rotating addresses buys no more guesses past accountFreeFailures', () => {
    const throttle = new LoginThrottle(LIMITS);
    const waits = Array.from({ length: 6 }, (_, i) => throttle.begin('alice', `2001:db8::${i}`, 0));
    expect(waits).toEqual([0, 0, 0, 0, 1_000, 1_000]);
    expect(throttle.accountWaitMs('alice', 0)).toBe(1_000);
    expect(throttle.begin('bob', '2001:db8::99', 0)).toBe(0);
    expect(throttle.begin('alice', '2001:db8::100', 1_000)).toBe(0);
    expect(throttle.accountWaitMs('alice', 1_000)).toBe(2_000);
  });

  it('clears the account count on a successful sign-in', () => {
    const throttle = new LoginThrottle(LIMITS);
    for (let i = 0; i < 4; i += 1) throttle.begin('alice', `10.1.0.${i}`, 0);
    throttle.succeeded('alice', '10.1.0.3');
    expect(throttle.accountWaitMs('alice', 0)).toBe(0);
  });
});
