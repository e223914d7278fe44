import { describe, expect, it } from 'vitest';
import { formatMinor, parseAmount } from '../../src/commands/money.ts';

const MAX = 100_000_000_000n;

describe('parseAmount', () => {
  it.each([
    ['10.00', 1000n],
    ['10', 1000n],
    ['10.5', 1050n],
    ['0.01', 1n],
    [10.5, 1050n],
    [0.1, 10n],
    [0.29, 29n],
    [1234567.89, 123456789n],
    ['1000000000.00', 100_000_000_000n],
  ])('reads %j exactly as %s minor units', (input, minor) => {
    expect(parseAmount(input, MAX)).toEqual({ ok: true, minor });
  });

  it.each([
    ['10.001', 'too_many_decimals'],
    [0.001, 'too_many_decimals'],
    [1e-7, 'not_a_decimal'],
    ['0', 'not_positive'],
    ['0.00', 'not_positive'],
    [0, 'not_positive'],
    ['-1.00', 'not_positive'],
    [-1, 'not_positive'],
    ['1e3', 'not_a_decimal'],
    [1e21, 'not_a_decimal'],
    [Number.NaN, 'not_a_decimal'],
    [Number.POSITIVE_INFINITY, 'not_a_decimal'],
    ['', 'not_a_decimal'],
    [' 1.00', 'not_a_decimal'],
    ['+1.00', 'not_a_decimal'],
    ['1,00', 'not_a_decimal'],
    ['01.00', 'not_a_decimal'],
    ['１０', 'not_a_decimal'],
    ['1000000000.01', 'too_large'],
    ['99999999999999999999', 'not_a_decimal'],
    [null, 'not_a_decimal'],
    [true, 'not_a_decimal'],
    [{ amount: 1 }, 'not_a_decimal'],
  ])('refuses %j as %s', (input, problem) => {
    const parsed = parseAmount(input, MAX);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.problem).toBe(problem);
  });
});

describe('formatMinor', () => {
  it.each([
    [0n, '0.00'],
    [1n, '0.01'],
    [1050n, '10.50'],
    [-5n, '-0.05'],
    [-123456n, '-1234.56'],
    [9_007_199_254_740_993n, '90071992547409.93'],
  ])('formats %s as %s', (minor, text) => {
    expect(formatMinor(minor)).toBe(text);
  });

  it('round-trips every cent value of a range through parse and format', () => {
    for (let minor = 1n; minor < 20_000n; minor += 7n) {
      const parsed = parseAmount(formatMinor(minor), MAX);
      expect(parsed).toEqual({ ok: true, minor });
    }
  });
});
