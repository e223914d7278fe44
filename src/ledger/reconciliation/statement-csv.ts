/**
 * A payment provider's statement in a generic CSV (docs/reconciliation.md): one line per payment,
 * with a reference, an amount, a currency, a time and a direction, under a header naming the
 * columns (renamed with a mapping when the provider calls them otherwise). Pure: bytes in, lines
 * or a StatementError naming the line and the column out. Anything doubtful is refused whole,
 * so a bad file stores nothing: bytes that are not UTF-8, a missing column, a cell a spreadsheet
 * would run as a formula, an amount that is not exact.
 */
import { AMOUNT_MINOR_CEILING } from '../../commands/fields.ts';
import { parseAmount } from '../../commands/money.ts';

export const STATEMENT_COLUMNS = ['reference', 'amount', 'currency', 'time', 'direction'] as const;
export type StatementColumn = (typeof STATEMENT_COLUMNS)[number];
/** The most payment lines one statement may hold. */
export const STATEMENT_LINES_MAX = 100_000;
/** The longest reference a line may carry (as external_ref). */
export const STATEMENT_REFERENCE_CHARS_MAX = 100;
/** The ledger's currency: a statement in another one cannot be matched. */
export const STATEMENT_CURRENCY = 'RUB';

export type Direction = 'deposit' | 'withdraw';

export interface StatementLine {
  /** The line's number in the file, the header being line 1. */
  readonly line: number;
  readonly reference: string;
  readonly amount: bigint;
  readonly timeMs: number;
  readonly direction: Direction;
}

export class StatementError extends Error {
  override readonly name = 'StatementError';
}

/** What each direction may be called in a statement. */
const DIRECTIONS: Readonly<Record<string, Direction>> = {
  deposit: 'deposit',
  credit: 'deposit',
  in: 'deposit',
  withdraw: 'withdraw',
  withdrawal: 'withdraw',
  payout: 'withdraw',
  debit: 'withdraw',
  out: 'withdraw',
};
/** A cell a spreadsheet would evaluate (CSV injection): refused, not stored, not echoed into a CSV. */
const FORMULA_START = /^[=+\-@\t\r]/;
const INSTANT = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/;
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
/** The years a statement's time may be in: what PostgreSQL stores, and what a statement can mean. */
const YEAR_MIN = 2000;
const YEAR_MAX = 2100;

/**
 * Reads the statement. `mapping` renames columns: `{ reference: 'payment_id' }` reads the
 * reference from the column headed `payment_id`. The delimiter is `,`, or `;` when the header
 * holds a `;` and no `,`.
 */
export function parseStatement(
  bytes: Uint8Array,
  mapping: Partial<Record<StatementColumn, string>> = {},
): StatementLine[] {
  const text = decodeUtf8(bytes);
  const rows = csvRows(text, delimiterOf(text));
  const header = rows[0]?.cells;
  if (!header || header.every((cell) => cell.trim() === '')) throw new StatementError('the file has no header line');
  const index = columnIndex(header, mapping);
  const lines: StatementLine[] = [];
  for (const row of rows.slice(1)) {
    if (row.cells.length === 1 && row.cells[0]!.trim() === '') continue;
    lines.push(lineOf(row.cells, row.line, index));
  }
  return lines;
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new StatementError('the file is not UTF-8 text');
  }
}

function delimiterOf(text: string): ',' | ';' {
  const header = text.slice(0, text.indexOf('\n') === -1 ? text.length : text.indexOf('\n'));
  return header.includes(';') && !header.includes(',') ? ';' : ',';
}

/** A row of cells and the line of the file it starts on (a quoted cell may span lines). */
interface Row {
  readonly line: number;
  readonly cells: string[];
}

/**
 * RFC 4180: quoted cells may hold the delimiter, quotes (doubled) and line breaks. At most
 * STATEMENT_LINES_MAX rows besides the header, blank ones included: a file of empty lines is
 * refused as soon as it passes that, not read into memory whole.
 */
function csvRows(text: string, delimiter: string): Row[] {
  const rows: Row[] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  const endRow = () => {
    row.push(cell);
    rows.push({ line: rowLine, cells: row });
    if (rows.length > STATEMENT_LINES_MAX + 1)
      throw new StatementError(`the statement has more than ${STATEMENT_LINES_MAX} lines`);
    row = [];
    cell = '';
    rowLine = line;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (ch === '\n') line++;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"' && cell === '') quoted = true;
    else if (ch === delimiter) {
      row.push(cell);
      cell = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') {
        i++;
        line++;
      }
      endRow();
    } else cell += ch;
  }
  if (quoted) throw new StatementError(`line ${rowLine}: a quoted cell is not closed`);
  if (cell !== '' || row.length > 0) endRow();
  return rows;
}

function columnIndex(
  header: readonly string[],
  mapping: Partial<Record<StatementColumn, string>>,
): Record<StatementColumn, number> {
  const names = header.map((cell) =>
    cell
      .trim()
      .replace(/^\uFEFF/, '')
      .toLowerCase(),
  );
  const twice = names.find((name, i) => name !== '' && names.indexOf(name) !== i);
  if (twice !== undefined) throw new StatementError(`the header names the column ${JSON.stringify(twice)} twice`);
  const index = {} as Record<StatementColumn, number>;
  for (const column of STATEMENT_COLUMNS) {
    const name = (mapping[column] ?? column).toLowerCase();
    const at = names.indexOf(name);
    if (at === -1)
      throw new StatementError(
        `column "${column}" is missing${mapping[column] ? ` (mapped from ${JSON.stringify(mapping[column])})` : ''}; the header has ${names.map((n) => JSON.stringify(n)).join(', ')}`,
      );
    index[column] = at;
  }
  return index;
}

function lineOf(row: readonly string[], line: number, index: Record<StatementColumn, number>): StatementLine {
  const cell = (column: StatementColumn): string => {
    const value = row[index[column]];
    if (value === undefined) throw new StatementError(`line ${line}: column "${column}" is missing`);
    // Checked on the trimmed cell too: " =HYPERLINK(...)" is a formula once trimmed.
    const trimmed = value.trim();
    if (FORMULA_START.test(value) || FORMULA_START.test(trimmed))
      throw new StatementError(
        `line ${line}, column "${column}": a cell starting with ${JSON.stringify(trimmed[0] ?? value[0])} (a spreadsheet formula) is refused`,
      );
    return trimmed;
  };
  const reference = cell('reference');
  if (reference === '' || reference.length > STATEMENT_REFERENCE_CHARS_MAX)
    throw new StatementError(`line ${line}: the reference must be 1-${STATEMENT_REFERENCE_CHARS_MAX} characters`);
  if (CONTROL_CHARACTER.test(reference))
    throw new StatementError(`line ${line}: the reference holds a control character`);
  const amount = parseAmount(cell('amount'), BigInt(AMOUNT_MINOR_CEILING));
  if (!amount.ok) throw new StatementError(`line ${line}: the amount ${amount.message}`);
  const currency = cell('currency').toUpperCase();
  if (currency !== STATEMENT_CURRENCY)
    throw new StatementError(
      `line ${line}: the currency is ${JSON.stringify(currency)}, the ledger's is ${STATEMENT_CURRENCY}`,
    );
  const timeMs = instantOf(cell('time'));
  if (timeMs === null)
    throw new StatementError(
      `line ${line}: the time must be a real ISO 8601 instant with an offset, in ${YEAR_MIN}-${YEAR_MAX}, like 2026-12-01T10:00:00Z`,
    );
  const direction = DIRECTIONS[cell('direction').toLowerCase()];
  if (!direction)
    throw new StatementError(`line ${line}: the direction must be one of ${Object.keys(DIRECTIONS).join(', ')}`);
  return { line, reference, amount: amount.minor, timeMs, direction };
}

/** Epoch milliseconds of a real instant (no 31 February, no hour 25) in YEAR_MIN-YEAR_MAX, or null. */
function instantOf(text: string): number | null {
  const match = INSTANT.exec(text);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map((n) => Number(n ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (year < YEAR_MIN || year > YEAR_MAX) return null;
  const asWritten = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  const real =
    asWritten.getUTCMonth() === month - 1 &&
    asWritten.getUTCDate() === day &&
    asWritten.getUTCHours() === hour &&
    asWritten.getUTCMinutes() === minute &&
    asWritten.getUTCSeconds() === second;
  const ms = Date.parse(text);
  return real && !Number.isNaN(ms) ? ms : null;
}

/** `reference=payment_id,amount=gross`: each canonical column and the header it is read from. */
export function parseMapping(text: string): Partial<Record<StatementColumn, string>> {
  const mapping: Partial<Record<StatementColumn, string>> = {};
  for (const pair of text.split(',').filter((p) => p.trim() !== '')) {
    const [column, name] = pair.split('=').map((s) => s.trim());
    if (!STATEMENT_COLUMNS.includes(column as StatementColumn) || !name)
      throw new StatementError(
        `the mapping ${JSON.stringify(pair)} must be <column>=<header>, column one of ${STATEMENT_COLUMNS.join(', ')}`,
      );
    mapping[column as StatementColumn] = name;
  }
  return mapping;
}
