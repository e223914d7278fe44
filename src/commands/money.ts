/**
 * Exact money parsing and formatting. Amounts are integer minor units (kopecks) held in a
 * BigInt; a float never touches them. On the wire they are decimal strings with two digits.
 */

/** At most 2 fraction digits; no sign, exponent, spaces or leading '+'. */
const DECIMAL = /^(0|[1-9][0-9]{0,17})(?:\.([0-9]{1,2}))?$/;

export type AmountProblem = 'not_a_decimal' | 'too_many_decimals' | 'not_positive' | 'too_large';

export type ParsedAmount = { ok: true; minor: bigint } | { ok: false; problem: AmountProblem; message: string };

/**
 * Parses a positive amount given as a decimal string ("10.50") or a JSON number (10.5).
 * A JSON number is read through its shortest decimal form, which is exact for any number a
 * client can write with two decimals; anything that needs an exponent is refused.
 */
export function parseAmount(input: unknown, maxMinor: bigint): ParsedAmount {
  const text = typeof input === 'number' ? numberToDecimal(input) : typeof input === 'string' ? input : null;
  if (text === null) return problem('not_a_decimal', 'must be a decimal string like "10.00" or a number');
  const match = DECIMAL.exec(text);
  if (!match) {
    if (/^[0-9]+\.[0-9]{3,}$/.test(text)) return problem('too_many_decimals', 'must have at most 2 decimal places');
    if (/^-/.test(text)) return problem('not_positive', 'must be greater than 0');
    return problem('not_a_decimal', 'must be a decimal string like "10.00" or a number');
  }
  const minor = BigInt(match[1]!) * 100n + BigInt((match[2] ?? '').padEnd(2, '0'));
  if (minor <= 0n) return problem('not_positive', 'must be greater than 0');
  if (minor > maxMinor) return problem('too_large', `must be at most ${formatMinor(maxMinor)}`);
  return { ok: true, minor };
}

function numberToDecimal(value: number): string | null {
  if (!Number.isFinite(value)) return null;
  const text = String(value);
  return /e/i.test(text) ? null : text;
}

function problem(kind: AmountProblem, message: string): ParsedAmount {
  return { ok: false, problem: kind, message };
}

/** 1234n -> "12.34", -5n -> "-0.05". */
export function formatMinor(minor: bigint): string {
  const negative = minor < 0n;
  const abs = negative ? -minor : minor;
  const whole = abs / 100n;
  const cents = (abs % 100n).toString().padStart(2, '0');
  return `${negative ? '-' : ''}${whole}.${cents}`;
}
