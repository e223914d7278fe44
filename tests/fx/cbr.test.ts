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

describe('the parser on hostile input', () => {
  it('refuses an unclosed entry, a missing </ValCurs>, and a currency listed twice', () => {
    const valute = (code: string) =>
      `<Valute ID="R1"><CharCode>${code}</CharCode><Nominal>1</Nominal><Value>1,5</Value></Valute>`;
    const bad = [
      `<ValCurs Date="05.12.2026">${valute('USD')}<Valute ID="R2"><CharCode>EUR</CharCode></ValCurs>`,
      `<ValCurs Date="05.12.2026">${valute('USD')}`,
      `<ValCurs Date="05.12.2026">${valute('USD')}${valute('USD')}</ValCurs>`,
    ];
    for (const text of bad) expect(() => parseCbrDaily(text), text.slice(30, 90)).toThrow(CbrFormatError);
  });

  it('reads a megabyte of unclosed tags in one pass, not one pass per tag', () => {
    const hostile = `<ValCurs Date="05.12.2026">${'<Valute>'.repeat(125_000)}</ValCurs>`;
    const started = performance.now();
    expect(() => parseCbrDaily(hostile)).toThrow(CbrFormatError);
    // A complexity guard, not a speed target: the regular expression this replaced took 4-18 s
    // here (one scan to the end per tag), one pass takes a few milliseconds.
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});
