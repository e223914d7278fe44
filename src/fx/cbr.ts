/**
 * The Central Bank of Russia's daily rates file (XML_daily.asp), parsed strictly: a `ValCurs`
 * with a `Date` (dd.mm.yyyy) and `Valute` entries each saying that `Nominal` units of `CharCode`
 * cost `Value` roubles, with a decimal comma. The file is windows-1251; only its ASCII fields
 * are read, so it is decoded as latin1, byte for byte. A file with anything malformed is refused
 * whole: keeping yesterday's good rates beats taking half of a broken file.
 */

export class CbrFormatError extends Error {
  override readonly name = 'CbrFormatError';
}

export interface CbrRate {
  readonly currency: string;
  /** Exact decimal strings: `units` of the currency cost `rub` roubles. */
  readonly units: string;
  readonly rub: string;
}

export interface CbrRates {
  /** The day the rates are for, YYYY-MM-DD. */
  readonly date: string;
  readonly rates: readonly CbrRate[];
}

/** More entries than any real file has (about 55): a bound on what one document may make us store. */
export const CBR_CURRENCIES_MAX = 300;

const DATE_ATTRIBUTE = /\bDate="(\d{2})\.(\d{2})\.(\d{4})"/;
const field = (block: string, name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(block)?.[1]?.trim();

/**
 * Walks the text with indexOf, never with a regular expression that could backtrack over it: a
 * hostile answer of a megabyte of unclosed tags costs one pass, not one pass per tag.
 */
export function parseCbrDaily(body: Buffer | string): CbrRates {
  const text = typeof body === 'string' ? body : body.toString('latin1');
  const open = text.indexOf('<ValCurs');
  const openEnd = open < 0 ? -1 : text.indexOf('>', open);
  const close = text.lastIndexOf('</ValCurs>');
  if (open < 0 || openEnd < 0 || close < openEnd) throw new CbrFormatError('no <ValCurs ...> ... </ValCurs>');
  const date = dateOf(text.slice(open, openEnd));
  const rates: CbrRate[] = [];
  const seen = new Set<string>();
  let at = text.indexOf('<Valute', openEnd);
  while (at >= 0 && at < close) {
    if (rates.length >= CBR_CURRENCIES_MAX) throw new CbrFormatError(`more than ${CBR_CURRENCIES_MAX} currencies`);
    const end = text.indexOf('</Valute>', at);
    const next = text.indexOf('<Valute', at + 1);
    if (end < 0 || end > close || (next >= 0 && next < end)) throw new CbrFormatError('a <Valute> is not closed');
    const rate = parseValute(text.slice(at, end));
    if (seen.has(rate.currency)) throw new CbrFormatError(`${rate.currency} is listed twice`);
    seen.add(rate.currency);
    rates.push(rate);
    at = next;
  }
  if (rates.length === 0) throw new CbrFormatError('no <Valute> entries');
  return { date, rates };
}

function dateOf(tag: string): string {
  const match = DATE_ATTRIBUTE.exec(tag);
  if (!match) throw new CbrFormatError('no <ValCurs Date="dd.mm.yyyy">');
  const [, day, month, year] = match;
  const date = `${year}-${month}-${day}`;
  const parsed = new Date(`${date}T00:00:00Z`);
  if (Number.isNaN(parsed.getTime()) || parsed.getUTCDate() !== Number(day))
    throw new CbrFormatError(`not a date: ${day}.${month}.${year}`);
  return date;
}

function parseValute(block: string): CbrRate {
  const currency = field(block, 'CharCode');
  const nominal = field(block, 'Nominal');
  const value = field(block, 'Value');
  if (!currency || !/^[A-Z]{3}$/.test(currency)) throw new CbrFormatError(`bad CharCode: ${String(currency)}`);
  if (!nominal || !/^[1-9]\d{0,9}$/.test(nominal)) throw new CbrFormatError(`bad Nominal for ${currency}`);
  if (!value || !/^\d{1,12},\d{1,12}$/.test(value) || /^0+,0+$/.test(value))
    throw new CbrFormatError(`bad Value for ${currency}`);
  return { currency, units: nominal, rub: value.replace(',', '.') };
}
