/**
 * The CSV the service writes (the revenue report, statements): RFC 4180 cells, `;` between
 * them, CRLF between lines.
 *
 * A cell is quoted whenever it holds `;` or `,`, a quote or a line break. The comma counts
 * although it is not our separator: a spreadsheet set to commas splits an unquoted
 * `x,=HYPERLINK(...)` into two cells, and the second would run as a formula.
 * A cell a spreadsheet would run as a formula (it starts with =, +, -, @, a tab or a carriage
 * return) gets a leading apostrophe. The numbers the service itself writes never start that way
 * except negative amounts, which are numbers, not formulas, and keep their sign.
 */
export const CSV_SEPARATOR = ';';

export function csvField(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) && !/^-?[0-9]+(\.[0-9]+)?$/.test(value) ? `'${value}` : value;
  return /[;,"\r\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** Lines of cells, each line ended by CRLF. */
export function csvText(lines: ReadonlyArray<readonly string[]>): string {
  return lines.map((cells) => `${cells.map(csvField).join(CSV_SEPARATOR)}\r\n`).join('');
}
