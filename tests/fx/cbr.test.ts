import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { CbrFormatError, parseCbrDaily } from '../../src/fx/cbr.ts';

const fixture = (name: string) => readFile(new URL(`./fixtures/${name}`, import.meta.url));

describe("the Central Bank's daily file", () => {
  it('reads the date and every currency of a windows-1251 file, as exact decimals', async () => {
    const parsed = parseCbrDaily(await fixture('cbr-daily.xml'));
    expect(parsed.date).toBe('2026-12-05');
    expect(parsed.rates).toHaveLength(7);
    expect(parsed.rates.find((r) => r.currency === 'USD')).toEqual({ currency: 'USD', units: '1', rub: '78.2001' });
    expect(parsed.rates.find((r) => r.currency === 'JPY')).toEqual({ currency: 'JPY', units: '100', rub: '50.3412' });
  });

  it('refuses a whole file with one malformed value, so the last good rates stay', async () => {
    const malformed = await fixture('cbr-daily-malformed.xml');
    expect(() => parseCbrDaily(malformed)).toThrow(/bad Value for EUR/);
  });

  it('refuses what is not the format: HTML, no date, an impossible date, no entries, odd codes', () => {
    const valute = (code: string, nominal = '1', value = '1,5') =>
      `<Valute ID="R1"><CharCode>${code}</CharCode><Nominal>${nominal}</Nominal><Value>${value}</Value></Valute>`;
    const bad = [
      '<html><body>Service unavailable</body></html>',
      `<ValCurs name="x">${valute('USD')}</ValCurs>`,
      `<ValCurs Date="31.02.2026">${valute('USD')}</ValCurs>`,
      '<ValCurs Date="05.12.2026"></ValCurs>',
      `<ValCurs Date="05.12.2026">${valute('usd')}</ValCurs>`,
      `<ValCurs Date="05.12.2026">${valute('USD', '0')}</ValCurs>`,
      `<ValCurs Date="05.12.2026">${valute('USD', '1', '0,0000')}</ValCurs>`,
      `<ValCurs Date="05.12.2026">${valute('USD', '1', '-1,5')}</ValCurs>`,
      `<ValCurs Date="05.12.2026">${valute('USD').repeat(301)}</ValCurs>`,
    ];
    for (const text of bad) expect(() => parseCbrDaily(text), text.slice(0, 60)).toThrow(CbrFormatError);
  });
});
