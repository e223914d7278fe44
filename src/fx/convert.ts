/**
 * Converting a rouble amount into another currency, exactly: a rate is a ratio of two decimal
 * strings (`units` of the currency are worth `rub` roubles), and the only rounding is the last
 * step, half-even to the currency's minor unit. No floating point anywhere.
 */

/** A non-negative decimal string: digits, optionally a point and more digits. */
const DECIMAL = /^(\d{1,30})(?:\.(\d{1,30}))?$/;
/** An ISO 4217 code, as the query and the rates table hold it. */
export const CURRENCY_PATTERN = /^[A-Z]{3}$/;
export const LEDGER_CURRENCY = 'RUB';
const LEDGER_MINOR_DIGITS = 2;

/** A decimal string as an integer and a power of ten: "92.5058" is 925058 / 10^4. */
export function parseDecimal(text: string): { readonly digits: bigint; readonly scale: number } {
  const match = DECIMAL.exec(text);
  if (!match) throw new RangeError(`not a decimal: ${JSON.stringify(text)}`);
  const fraction = match[2] ?? '';
  return { digits: BigInt(match[1]! + fraction), scale: fraction.length };
}

/**
 * ISO 4217's minor units where they are not 2 (its list one, 2024). Not ICU's digits: those are
 * CLDR's display digits (HUF 0, IDR 0, IQD 0 where ISO says 2, 2, 3).
 */
const MINOR_DIGITS_NOT_TWO: Readonly<Record<string, number>> = {
  BIF: 0,
  CLP: 0,
  DJF: 0,
  GNF: 0,
  ISK: 0,
  JPY: 0,
  KMF: 0,
  KRW: 0,
  PYG: 0,
  RWF: 0,
  UGX: 0,
  UYI: 0,
  VND: 0,
  VUV: 0,
  XAF: 0,
  XOF: 0,
  XPF: 0,
  BHD: 3,
  IQD: 3,
  JOD: 3,
  KWD: 3,
  LYD: 3,
  OMR: 3,
  TND: 3,
  CLF: 4,
  UYW: 4,
};
/** The currencies this runtime's ICU knows: a code outside it is no currency. */
const KNOWN_CURRENCIES: ReadonlySet<string> = new Set(Intl.supportedValuesOf('currency'));

/** The digits after the point of the currency's minor unit (USD 2, JPY 0, KWD 3); null for no ISO 4217 currency. */
export function minorDigitsOf(currency: string): number | null {
  if (!CURRENCY_PATTERN.test(currency) || !KNOWN_CURRENCIES.has(currency)) return null;
  return MINOR_DIGITS_NOT_TWO[currency] ?? 2;
}

/** numerator / denominator rounded half to even; the denominator is positive. */
export function divideHalfEven(numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError('the denominator must be positive');
  const negative = numerator < 0n;
  const n = negative ? -numerator : numerator;
  let quotient = n / denominator;
  const twice = (n % denominator) * 2n;
  if (twice > denominator || (twice === denominator && quotient % 2n === 1n)) quotient += 1n;
  return negative ? -quotient : quotient;
}

export interface Rate {
  /** `units` of the currency are worth `rub` roubles; both exact decimal strings. */
  readonly units: string;
  readonly rub: string;
}

/**
 * Kopecks as minor units of a currency with `minorDigits` digits:
 * kopecks / 10^2 * units / rub * 10^minorDigits, rounded once, half-even.
 */
export function convertMinor(kopecks: bigint, rate: Rate, minorDigits: number): bigint {
  const units = parseDecimal(rate.units);
  const rub = parseDecimal(rate.rub);
  if (units.digits === 0n || rub.digits === 0n) throw new RangeError('a rate must be positive');
  // units = u / 10^us and rub = r / 10^rs, so the result is kopecks * u * 10^(rs + d) / (r * 10^(us + 2)).
  const numerator = kopecks * units.digits * 10n ** BigInt(rub.scale + minorDigits);
  const denominator = rub.digits * 10n ** BigInt(units.scale + LEDGER_MINOR_DIGITS);
  return divideHalfEven(numerator, denominator);
}

/** Minor units as an exact decimal string with `minorDigits` digits after the point. */
export function formatMinorIn(minor: bigint, minorDigits: number): string {
  const negative = minor < 0n;
  const digits = (negative ? -minor : minor).toString().padStart(minorDigits + 1, '0');
  const whole = minorDigits === 0 ? digits : digits.slice(0, -minorDigits);
  const fraction = minorDigits === 0 ? '' : `.${digits.slice(-minorDigits)}`;
  return `${negative ? '-' : ''}${whole}${fraction}`;
}
