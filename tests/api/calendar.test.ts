import { describe, expect, it } from 'vitest';
import { isCalendarDate, isInstant, isMonth } from '../../src/api/calendar.ts';

describe('the calendar check of client dates', () => {
  it('takes real instants from 1970 to 9999, with or without fractions, in Z or an offset', () => {
    for (const value of [
      '1970-01-01T00:00:00Z',
      '2026-11-28T10:00:00+03:00',
      '2024-02-29T23:59:59.999999Z',
      '2026-12-03T19:00:00.5-05:30',
      '9999-12-31T23:59:59Z',
      '2026-01-01T00:00:00+14:00',
    ])
      expect(isInstant(value), value).toBe(true);
  });

  it('refuses what PostgreSQL cannot hold or a calendar does not have', () => {
    for (const value of [
      '2026-02-30T00:00:00Z',
      '2026-02-29T00:00:00Z',
      '2100-02-29T00:00:00Z',
      '2026-04-31T00:00:00Z',
      '0000-01-01T00:00:00Z',
      '1969-12-31T23:59:59Z',
      '2026-13-01T00:00:00Z',
      '2026-00-10T00:00:00Z',
      '2026-01-01T24:00:00Z',
      '2026-01-01T23:60:00Z',
      '2026-01-01T23:59:60Z',
      '2026-01-01T00:00:00.1234567Z',
      '2026-01-01T00:00:00+15:00',
      '2026-01-01T00:00:00+03:60',
      '2026-01-01T00:00:00',
      '2026-01-01 00:00:00Z',
      '+02026-01-01T00:00:00Z',
      '2026-01-01T00:00Z',
      '',
    ])
      expect(isInstant(value), value).toBe(false);
  });

  it('takes months from 1970-01 to 9999-12 only', () => {
    expect(['1970-01', '2026-12', '9999-12'].map(isMonth)).toEqual([true, true, true]);
    expect(['0000-01', '1969-12', '2026-13', '2026-00', '2026-1', '10000-01', ''].map(isMonth)).toEqual(
      Array(7).fill(false),
    );
  });

  it('knows leap years', () => {
    expect([2000, 2024, 1900, 2100, 2026].map((year) => isCalendarDate(year, 2, 29))).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});
