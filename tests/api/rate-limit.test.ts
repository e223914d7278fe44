import { describe, expect, it } from 'vitest';
import { PrincipalRateLimit } from '../../src/api/rate-limit.ts';

describe('PrincipalRateLimit', () => {
  it('lets a burst through, then one request per 1/perS, and says how long to wait', () => {
    const limit = new PrincipalRateLimit(2, 3);
    expect([0, 0, 0].map(() => limit.take(1, 1_000))).toEqual([0, 0, 0]);
    expect(limit.take(1, 1_000)).toBe(500);
    expect(limit.take(1, 1_250)).toBe(250);
    expect(limit.take(1, 1_500)).toBe(0);
    expect(limit.take(1, 1_500)).toBe(500);
  });

  it('keeps one bucket per principal: one caller spending theirs leaves the others whole', () => {
    const limit = new PrincipalRateLimit(1, 1);
    expect(limit.take(1, 0)).toBe(0);
    expect(limit.take(1, 0)).toBeGreaterThan(0);
    expect(limit.take(2, 0)).toBe(0);
  });

  it('never holds more than the burst, however long a caller was quiet', () => {
    const limit = new PrincipalRateLimit(10, 2);
    limit.take(1, 0);
    expect([0, 0, 0].map(() => limit.take(1, 3_600_000))).toEqual([0, 0, 100]);
  });

  it('is off at 0 requests per second', () => {
    const limit = new PrincipalRateLimit(0, 1);
    expect(Array.from({ length: 100 }, () => limit.take(1, 0)).every((wait) => wait === 0)).toBe(true);
  });
});
