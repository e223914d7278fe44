/**
 * A balance shown in another currency (GET /api/balances/?currency=USD): each amount converted
 * exactly at the stored rate, rounded half-even to the currency's minor unit, with the rate, its
 * source and its date beside it. The ledger's own amounts stay in roubles, and are shown too.
 */
import type pg from 'pg';
import { ApiError } from '../errors.ts';
import { convertMinor, formatMinorIn, minorDigitsOf } from '../fx/convert.ts';
import { rateOf } from '../fx/store.ts';

export interface LedgerAmounts {
  readonly amount: string;
  readonly reserved: string;
  readonly incoming: string;
}

/** "12.34" (what formatMinor writes) as kopecks. */
function kopecksOf(text: string): bigint {
  if (!/^-?\d+\.\d{2}$/.test(text)) throw new RangeError(`not an amount: ${text}`);
  return BigInt(text.replace('.', ''));
}

/** The amounts in `currency`, and the rate used; 409 rate_unavailable when no fresh rate exists. */
export async function convertBalance(
  db: pg.Pool,
  amounts: LedgerAmounts,
  currency: string,
  rateAgeMaxS: number,
): Promise<LedgerAmounts & { readonly rate: object }> {
  const digits = minorDigitsOf(currency);
  const rate = digits === null ? null : await rateOf(db, currency);
  if (digits === null || !rate)
    throw new ApiError('rate_unavailable', `No exchange rate for ${currency}.`, { currency });
  if (rate.ageS > rateAgeMaxS)
    throw new ApiError(
      'rate_unavailable',
      `The ${currency} rate is for ${rate.rateDate}, older than FX_RATE_AGE_MAX_S (${rateAgeMaxS} s); it is not used.`,
      { currency, rate_date: rate.rateDate },
    );
  const convert = (text: string) => formatMinorIn(convertMinor(kopecksOf(text), rate, digits), digits);
  return {
    amount: convert(amounts.amount),
    reserved: convert(amounts.reserved),
    incoming: convert(amounts.incoming),
    rate: { units: rate.units, rub: rate.rub, source: rate.source, date: rate.rateDate },
  };
}
