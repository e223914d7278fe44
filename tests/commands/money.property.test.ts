import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMinor, parseAmount } from '../../src/commands/money.ts';
import { createCommandSchema } from '../../src/commands/schema.ts';
import { parseCommandMessage } from '../../src/consumer/parse-message.ts';

const MAX = 100_000_000_000n;
const schema = createCommandSchema({ amountMinorMax: Number(MAX) });

/**
 * The amount rules of docs/commands.md, read independently of money.ts: a string of ASCII
 * digits without leading zeros and with at most two decimals, or a finite JSON number that
 * equals its own two-decimal rounding; positive and at most MAX minor units.
 */
function referenceMinor(input: unknown): bigint | null {
  let text: string;
  if (typeof input === 'string') text = input;
  else if (
    typeof input === 'number' &&
    Number.isFinite(input) &&
    Math.abs(input) < 1e21 &&
    Number(input.toFixed(2)) === input &&
    !/e/i.test(String(input))
  )
    text = input.toFixed(2);
  else return null;
  const match = /^(\d+)(?:\.(\d{1,2}))?$/.exec(text);
  if (!match || [...text].some((c) => c !== '.' && (c < '0' || c > '9'))) return null;
  const whole = match[1]!;
  if ((whole.length > 1 && whole.startsWith('0')) || whole.length > 18) return null;
  const minor = BigInt(whole) * 100n + BigInt((match[2] ?? '').padEnd(2, '0'));
  return minor > 0n && minor <= MAX ? minor : null;
}

/** Inputs shaped like what clients really get wrong: numbers of every size, odd strings, junk. */
const amountLike = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.integer({ min: 1, max: 10_000_000 }).map((cents) => cents / 100),
  fc.bigInt().map(String),
  fc.string(),
  fc.stringMatching(/^-?[0-9]{0,20}(\.[0-9]{0,4})?(e[+-]?[0-9]{1,3})?$/),
  fc.constantFrom('NaN', 'Infinity', '-0', '0.00', '1e2', ' 1', '1,5', '٣', '0x10', '1_000', '007.50', '1.', '.5'),
);

describe('money parsing, for any input', () => {
  it('accepts exactly what the documented rules accept, with the same minor units', () => {
    let accepted = 0;
    fc.assert(
      fc.property(amountLike, (input) => {
        const parsed = parseAmount(input, MAX);
        const expected = referenceMinor(input);
        expect(parsed.ok ? parsed.minor : null, JSON.stringify(input)).toBe(expected);
        if (parsed.ok) accepted += 1;
      }),
      { numRuns: 3_000 },
    );
    // The property says little unless both sides were exercised.
    expect(accepted).toBeGreaterThan(300);
  });

  it('reads every two-decimal string exactly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: MAX }), (minor) => {
        const text = `${minor / 100n}.${String(minor % 100n).padStart(2, '0')}`;
        expect(formatMinor(minor)).toBe(text);
        expect(parseAmount(text, MAX)).toEqual({ ok: true, minor });
      }),
    );
  });
});

describe('command-topic messages, for any bytes', () => {
  /** A valid deposit and the command it must become, built without the schema. */
  const validDeposit = fc.record({
    id: fc.stringMatching(/^[A-Za-z0-9._:-]{1,128}$/),
    user_id: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    minor: fc.bigInt({ min: 1n, max: MAX }),
    comment: fc.string({ unit: fc.constantFrom('a', 'ж', ' ', '\t', '💰'), maxLength: 200 }),
  });
  /** One field broken, the rest valid: each must be refused. */
  const broken = fc.oneof(
    fc.constant({ user_id: 0 }),
    fc.constant({ user_id: 1.5 }),
    fc.constant({ user_id: '7' }),
    fc.constant({ amount: '0.001' }),
    fc.constant({ amount: '-1.00' }),
    fc.constant({ amount: formatMinor(MAX + 1n) }),
    fc.constant({ id: 'has space' }),
    fc.constant({ id: '' }),
    fc.constant({ comment: 'x'.repeat(501) }),
    fc.constant({ comment: 'nul\u0000' }),
    fc.constant({ type: 'mint' }),
    fc.constant({ reply_to: '__consumer_offsets' }),
  );

  it('turns every valid deposit into exactly the command it describes', () => {
    fc.assert(
      fc.property(validDeposit, ({ id, user_id, minor, comment }) => {
        const parsed = parseCommandMessage(
          Buffer.from(JSON.stringify({ id, type: 'deposit', user_id, amount: formatMinor(minor), comment })),
          schema,
        );
        expect(parsed.ok && parsed.command).toEqual({ id, type: 'deposit', user_id, amount: minor, comment });
      }),
      { numRuns: 1_000 },
    );
  });

  it('refuses a deposit with any one field broken, keeping its id when the id is fine', () => {
    fc.assert(
      fc.property(validDeposit, broken, ({ id, user_id, minor }, change) => {
        const parsed = parseCommandMessage(
          Buffer.from(JSON.stringify({ id, type: 'deposit', user_id, amount: formatMinor(minor), ...change })),
          schema,
        );
        expect(parsed.ok).toBe(false);
        if (!parsed.ok)
          expect(parsed).toMatchObject({ code: 'invalid_command', commandId: 'id' in change ? null : id });
      }),
      { numRuns: 1_000 },
    );
  });

  it('never throws on arbitrary bytes, and names a dead-letter code for what is not a command', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
          fc.json().map((text) => Buffer.from(text)),
        ),
        (bytes) => {
          const parsed = parseCommandMessage(bytes, schema);
          if (!parsed.ok) expect(['not_json', 'invalid_command', 'empty_message']).toContain(parsed.code);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
