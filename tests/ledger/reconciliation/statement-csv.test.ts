import { describe, expect, it } from 'vitest';
import { parseMapping, parseStatement, STATEMENT_LINES_MAX } from '../../../src/ledger/reconciliation/statement-csv.ts';

const HEADER = 'reference,amount,currency,time,direction';

describe('reading a statement', () => {
  it('reads quoted cells, CRLF, a BOM, semicolons, and renamed columns', () => {
    const text =
      '\uFEFFpayment_id;gross;currency;time;direction\r\n"pi;1";"1,00";RUB;2026-12-01T10:00:00+03:00;payout\r\n';
    expect(() => parseStatement(Buffer.from(text), parseMapping('reference=payment_id,amount=gross'))).toThrow(
      /line 2: the amount must be a decimal/,
    );
    const ok = 'payment_id;gross;currency;time;direction\n"pi;""1""";12.50;rub;2026-12-01T10:00:00+03:00;payout\n\n';
    expect(parseStatement(Buffer.from(ok), parseMapping('reference=payment_id,amount=gross'))).toEqual([
      {
        line: 2,
        reference: 'pi;"1"',
        amount: 1_250n,
        timeMs: Date.parse('2026-12-01T07:00:00Z'),
        direction: 'withdraw',
      },
    ]);
  });

  it.each([
    [
      'bytes that are not UTF-8',
      Buffer.from([...Buffer.from(`${HEADER}\npi_1,1.00,RUB,2026-12-01T10:00:00Z,in\n`), 0xff, 0xfe]),
      /not UTF-8/,
    ],
    [
      'a missing column',
      Buffer.from('reference,amount,time,direction\npi_1,1.00,2026-12-01T10:00:00Z,in\n'),
      /column "currency" is missing/,
    ],
    [
      'a formula in a cell',
      Buffer.from(`${HEADER}\n=HYPERLINK("http://x"),1.00,RUB,2026-12-01T10:00:00Z,in\n`),
      /line 2, column "reference": a cell starting with "=" \(a spreadsheet formula\)/,
    ],
    ['a negative amount', Buffer.from(`${HEADER}\npi_1,-1.00,RUB,2026-12-01T10:00:00Z,in\n`), /spreadsheet formula/],
    [
      'an inexact amount',
      Buffer.from(`${HEADER}\npi_1,1.005,RUB,2026-12-01T10:00:00Z,in\n`),
      /at most 2 decimal places/,
    ],
    ['another currency', Buffer.from(`${HEADER}\npi_1,1.00,USD,2026-12-01T10:00:00Z,in\n`), /currency is "USD"/],
    [
      'a time without an offset',
      Buffer.from(`${HEADER}\npi_1,1.00,RUB,2026-12-01 10:00,in\n`),
      /a real ISO 8601 instant with an offset/,
    ],
    [
      'an unknown direction',
      Buffer.from(`${HEADER}\npi_1,1.00,RUB,2026-12-01T10:00:00Z,sideways\n`),
      /direction must be one of/,
    ],
    [
      'an unclosed quote',
      Buffer.from(`${HEADER}\n"pi_1,1.00,RUB,2026-12-01T10:00:00Z,in\n`),
      /quoted cell is not closed/,
    ],
    ['no header', Buffer.from(''), /no header/],
    [
      'a day that does not exist',
      Buffer.from(`${HEADER}\npi_1,1.00,RUB,2026-02-31T10:00:00Z,in\n`),
      /a real ISO 8601 instant/,
    ],
    ['year 0000', Buffer.from(`${HEADER}\npi_1,1.00,RUB,0000-01-01T10:00:00Z,in\n`), /a real ISO 8601 instant/],
    [
      'a control character in a reference',
      Buffer.from(`${HEADER}\npi\u00001,1.00,RUB,2026-12-01T10:00:00Z,in\n`),
      /control character/,
    ],
    [
      'a formula behind a space',
      Buffer.from(`${HEADER}\n =HYPERLINK("x"),1.00,RUB,2026-12-01T10:00:00Z,in\n`),
      /spreadsheet formula/,
    ],
    [
      'a column named twice',
      Buffer.from(`${HEADER},amount\npi_1,1.00,RUB,2026-12-01T10:00:00Z,in,2\n`),
      /names the column "amount" twice/,
    ],
  ])('refuses %s, naming the line', (_what, bytes, message) => {
    expect(() => parseStatement(bytes)).toThrow(message);
  });

  it(`refuses more than ${STATEMENT_LINES_MAX} lines`, () => {
    const line = 'pi_x,1.00,RUB,2026-12-01T10:00:00Z,in\n';
    expect(() => parseStatement(Buffer.from(HEADER + '\n' + line.repeat(STATEMENT_LINES_MAX + 1)))).toThrow(
      /more than 100000 lines/,
    );
  });

  it('names the line a row starts on, after a quoted cell spanning lines', () => {
    const text = `${HEADER},note\npi_1,1.00,RUB,2026-12-01T10:00:00Z,in,"two\nlines"\npi_2,1.00,RUB,2026-12-01T10:00:00Z,sideways,\n`;
    expect(() => parseStatement(Buffer.from(text))).toThrow(/^line 4: the direction/);
  });

  it('refuses a file of empty lines as soon as it passes the line bound', () => {
    expect(() => parseStatement(Buffer.from(`${HEADER}\n${'\n'.repeat(STATEMENT_LINES_MAX + 5)}`))).toThrow(
      /more than 100000 lines/,
    );
  });

  it('refuses a mapping of an unknown column', () => {
    expect(() => parseMapping('ref=payment_id')).toThrow(/must be <column>=<header>/);
  });
});
