/**
 * The walkthrough's rendering and comparison: a rendered section parses back to the commands
 * and answers it was made of, and a changed status, field or value is a difference while an
 * instant, a random id or a cursor is not.
 */
import { describe, expect, it } from 'vitest';
import {
  difference,
  normalise,
  parseSection,
  renderSection,
  shownLines,
  type Step,
  type StepRun,
  wrap,
} from '../../scripts/walkthrough/engine.ts';
import { SECTIONS } from '../../scripts/walkthrough/steps.ts';

const deposit: Step = { say: 'a deposit', run: `api -X POST $B/api/add_funds/ \\\n  -d '{"user_id": 1}'` };
const answer =
  '{"id":1,"user_id":1,"amount":"100.00","transaction_type":"deposit","created_at":"2026-12-07T03:32:10.613Z",' +
  '"comment":"top-up, with a comma","command_id":"topup-1","status":"applied","balances":{"1":{"available":"100.00"}}}\n(201)';

describe('the walkthrough engine', () => {
  it('parses a rendered section back into its commands and answers, however long the lines', () => {
    const runs: StepRun[] = [
      { step: deposit, output: answer },
      { step: { run: 'AT=$(date)' }, output: '' },
      { step: { run: 'api $B/report', say: 'a CSV\nwith two comment lines' }, output: 'a;b\n1;2\n\n(200)' },
    ];
    const parsed = parseSection(renderSection(runs));
    expect(parsed.map((step) => step.run)).toEqual(runs.map((run) => run.step.run));
    expect(parsed.map((step) => step.shown)).toEqual(runs.map((run) => shownLines(run.step, run.output)));
    expect(
      renderSection(runs)
        .split('\n')
        .every((line) => line.length <= 140),
    ).toBe(true);
  });

  it('wraps after commas only, and joins back to the same line', () => {
    const pieces = wrap(answer.split('\n')[0]!, 40);
    expect(pieces.length).toBeGreaterThan(3);
    expect(pieces.slice(0, -1).every((piece) => piece.endsWith(','))).toBe(true);
    expect(pieces.join('')).toBe(answer.split('\n')[0]);
  });

  it('finds a changed status, field or amount, and ignores instants, ids and cursors', () => {
    const shown = shownLines(deposit, answer);
    const same = (text: string) => difference(deposit, shown, shownLines(deposit, text));
    expect(same(answer.replace('2026-12-07T03:32:10.613Z', '2027-01-01T00:00:00.001Z'))).toBeNull();
    expect(same(answer.replace('(201)', '(200)'))).toMatch(/line 2/);
    expect(same(answer.replace('"balances"', '"balance"'))).toMatch(/line 1/);
    expect(same(answer.replace('"100.00"', '"100.01"'))).toMatch(/line 1/);
    expect(same(answer.replace(',"comment"', ',"frozen":false,"comment"'))).toMatch(/line 1/);
    expect(same(answer.replace('\n(201)', ''))).toMatch(/shown: \(201\)\n {2}now: {3}\(none\)/);
    expect(normalise('"next_cursor":"WyIxMDAwIiw3XQ","id":"4ee3ab7e-96cc-43a7-a6c4-74b06605d0f6"')).toBe(
      '"next_cursor":"<opaque>","id":"<uuid>"',
    );
  });

  it('compares lines that come in no fixed order as a set, and nothing else', () => {
    const events: Step = { run: 'npm run -s example:events', anyOrder: true };
    expect(difference(events, ['user 2 #1', 'user 1 #1'], ['user 1 #1', 'user 2 #1'])).toBeNull();
    expect(difference(events, ['user 2 #1', 'user 1 #1'], ['user 1 #1', 'user 2 #2'])).not.toBeNull();
    expect(difference(deposit, ['a', 'b'], ['b', 'a'])).not.toBeNull();
  });

  it('shows only the statuses, the named headers, or a shortened output when a step says so', () => {
    expect(shownLines({ run: 'x', show: 'status' }, '{"a":1}\n(201)\n{"b":2}\n(409)')).toEqual(['(201)', '(409)']);
    const headers =
      'HTTP/1.1 202 Accepted\r\nlocation: /api/commands/k\r\ndate: today\r\n\r\n{"status":"pending"}\n(202)';
    expect(shownLines({ run: 'x', headers: ['location'] }, headers)).toEqual([
      'HTTP/1.1 202 Accepted',
      'location: /api/commands/k',
      '{"status":"pending"}',
      '(202)',
    ]);
    const long = Array.from({ length: 20 }, (_, i) => `row ${i}`).join('\n');
    expect(shownLines({ run: 'x', lines: { head: 2, tail: 1 } }, long)).toEqual(['row 0', 'row 1', '...', 'row 19']);
  });

  it('runs every section into a file with its own markers, each step once', () => {
    const ids = SECTIONS.map((section) => section.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const section of SECTIONS) expect(section.steps.length).toBeGreaterThan(0);
  });
});
