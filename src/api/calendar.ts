/**
 * Dates and instants a client sends (`at`, `month`, history and statement cursors), checked
 * against a real calendar before they reach PostgreSQL. `Date.parse` is no such check: it takes
 * February 30 (as March 2) and year 0, which PostgreSQL refuses with an error, a 500.
 * Years run from 1970 to 9999: nothing in the ledger is older, and PostgreSQL, JSON and
 * ISO 8601 all hold four-digit years.
 */
export const YEAR_MIN = 1970;
export const YEAR_MAX = 9999;
/** The widest UTC offset in use anywhere (Kiribati, +14:00). */
const OFFSET_HOURS_MAX = 14;

const INSTANT =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,6})?(Z|[+-]([0-9]{2}):([0-9]{2}))$/;
const MONTH = /^([0-9]{4})-([0-9]{2})$/;

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

export function isCalendarDate(year: number, month: number, day: number): boolean {
  return year >= YEAR_MIN && year <= YEAR_MAX && month >= 1 && month <= 12 && day >= 1 && day <= daysIn(year, month);
}

/**
 * An ISO 8601 instant with seconds and an offset (`Z` or `+03:00`), at most six fraction digits
 * (PostgreSQL keeps microseconds), on a real calendar day, at a real time of day.
 */
export function isInstant(value: string): boolean {
  const match = INSTANT.exec(value);
  if (!match) return false;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as number[];
  const offsetOk = match[8] === 'Z' || (Number(match[9]) <= OFFSET_HOURS_MAX && Number(match[10]) <= 59);
  return isCalendarDate(year!, month!, day!) && hour! <= 23 && minute! <= 59 && second! <= 59 && offsetOk;
}

/** A calendar month, YYYY-MM, in the years above. */
export function isMonth(value: string): boolean {
  const match = MONTH.exec(value);
  return match !== null && isCalendarDate(Number(match[1]), Number(match[2]), 1);
}
