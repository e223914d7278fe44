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

const VAL_CURS = /<ValCurs\b[^>]*\bDate="(\d{2})\.(\d{2})\.(\d{4})"/;
const VALUTE = /<Valute\b[^>]*>([\s\S]*?)<\/Valute>/g;
const field = (block: string, name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(block)?.[1]?.trim();

export function parseCbrDaily(body: Buffer | string): CbrRates {
  const text = typeof body === 'string' ? body : body.toString('latin1');
  const head = VAL_CURS.exec(text);
  if (!head) throw new CbrFormatError('no <ValCurs Date="dd.mm.yyyy">');
  const [, day, month, year] = head;
  const date = `${year}-${month}-${day}`;
  if (Number.isNaN(Date.parse(`${date}T00:00:00Z`)) || new Date(`${date}T00:00:00Z`).getUTCDate() !== Number(day))
    throw new CbrFormatError(`not a date: ${day}.${month}.${year}`);
  const rates: CbrRate[] = [];
  for (const match of text.matchAll(VALUTE)) {
    if (rates.length >= CBR_CURRENCIES_MAX) throw new CbrFormatError(`more than ${CBR_CURRENCIES_MAX} currencies`);
    rates.push(parseValute(match[1]!));
  }
  if (rates.length === 0) throw new CbrFormatError('no <Valute> entries');
  return { date, rates };
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
