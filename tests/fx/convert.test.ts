import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { convertMinor, divideHalfEven, formatMinorIn, minorDigitsOf, parseDecimal } from '../../src/fx/convert.ts';

describe('divideHalfEven', () => {
  it('rounds halves to the even neighbour, on both sides of zero', () => {
    const cases: Array<[bigint, bigint, bigint]> = [
      [5n, 2n, 2n],
      [7n, 2n, 4n],
      [6n, 4n, 2n],
      [10n, 4n, 2n],
      [11n, 4n, 3n],
      [-5n, 2n, -2n],
      [-7n, 2n, -4n],
      [1n, 3n, 0n],
      [2n, 3n, 1n],
      [0n, 7n, 0n],
    ];
    for (const [n, d, q] of cases) expect([n, d, divideHalfEven(n, d)]).toEqual([n, d, q]);
  });

  it('is never more than half a unit away from the exact quotient', () => {
    fc.assert(
      fc.property(fc.bigInt(-(10n ** 30n), 10n ** 30n), fc.bigInt(1n, 10n ** 15n), (n, d) => {
        const q = divideHalfEven(n, d);
        const error = n * 2n - q * d * 2n;
        return (error < 0n ? -error : error) <= d;
      }),
    );
  });
});

describe('convertMinor', () => {
  it('converts at an operator rate: 90.00 RUB at 0.0108 USD per rouble is 0.97 USD (0.972, rounded)', () => {
    expect(formatMinorIn(convertMinor(9_000n, { units: '0.0108', rub: '1' }, 2), 2)).toBe('0.97');
  });

  it("converts at the Central Bank's ratio: 100 JPY cost 50.3412 RUB, so 1,000.00 RUB is 1986 JPY (no minor unit)", () => {
    // 1000 / 50.3412 * 100 = 1986.44...
    expect(formatMinorIn(convertMinor(100_000n, { units: '100', rub: '50.3412' }, 0), 0)).toBe('1986');
  });

  it('rounds an exact half to even, and keeps three digits for KWD', () => {
    // 1.00 RUB at 0.0125 USD per rouble is exactly 0.0125 USD: 0.01 (to even), not 0.02.
    expect(convertMinor(100n, { units: '0.0125', rub: '1' }, 2)).toBe(1n);
    expect(convertMinor(100n, { units: '0.0135', rub: '1' }, 2)).toBe(1n);
    expect(convertMinor(300n, { units: '0.0125', rub: '1' }, 2)).toBe(4n);
    expect(formatMinorIn(convertMinor(25_456_780n, { units: '1', rub: '254.5678' }, 3), 3)).toBe('1000.000');
  });

  it('is exact where floating point is not: 0.10 + 0.20 roubles at rate 1 stay 30 kopecks', () => {
    expect(convertMinor(30n, { units: '1', rub: '1' }, 2)).toBe(30n);
    expect(convertMinor(1_000_000_000_000_000n, { units: '1', rub: '3' }, 2)).toBe(333_333_333_333_333n);
  });

  it('refuses a zero or malformed rate', () => {
    expect(() => convertMinor(100n, { units: '0', rub: '1' }, 2)).toThrow(RangeError);
    expect(() => convertMinor(100n, { units: '1e3', rub: '1' }, 2)).toThrow(RangeError);
    expect(() => parseDecimal('-1')).toThrow(RangeError);
  });
});

describe('minorDigitsOf', () => {
  it("knows each currency's minor unit from ISO 4217, and nothing for a code that is not one", () => {
    expect(['USD', 'EUR', 'JPY', 'KWD', 'CNY'].map(minorDigitsOf)).toEqual([2, 2, 0, 3, 2]);
    expect(['usd', 'US', 'USDX', ''].map(minorDigitsOf)).toEqual([null, null, null, null]);
  });
});

describe('formatMinorIn', () => {
  it('writes minor units with the currency digits', () => {
    expect([formatMinorIn(5n, 2), formatMinorIn(-5n, 2), formatMinorIn(1234n, 0), formatMinorIn(7n, 3)]).toEqual([
      '0.05',
      '-0.05',
      '1234',
      '0.007',
    ]);
  });
});

describe('minor units are ISO 4217, not display digits', () => {
  it('gives HUF and IDR two digits and IQD three, where CLDR shows none', () => {
    expect(['HUF', 'IDR', 'IQD'].map(minorDigitsOf)).toEqual([2, 2, 3]);
  });
});
