import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatMinor, parseAmount } from '../../src/commands/money.ts';
import { createCommandSchema } from '../../src/commands/schema.ts';
import { parseCommandMessage } from '../../src/consumer/parse-message.ts';

const MAX = 100_000_000_000n;
const schema = createCommandSchema({ amountMinorMax: Number(MAX) });

/** Inputs shaped like what clients really get wrong: numbers of every size, odd strings, junk. */
const amountLike = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.bigInt().map(String),
  fc.string(),
  fc.stringMatching(/^-?[0-9]{0,20}(\.[0-9]{0,4})?(e[+-]?[0-9]{1,3})?$/),
  fc.constantFrom('NaN', 'Infinity', '-0', '0.00', '1e2', ' 1', '1,5', '٣', '0x10', '1_000'),
);

describe('money parsing, for any input', () => {
  it('never throws, and accepts only positive amounts within the limit that format back exactly', () => {
    fc.assert(
      fc.property(amountLike, (input) => {
        const parsed = parseAmount(input, MAX);
        if (!parsed.ok) return;
        expect(parsed.minor > 0n && parsed.minor <= MAX).toBe(true);
        expect(parseAmount(formatMinor(parsed.minor), MAX)).toEqual(parsed);
      }),
      { numRuns: 2_000 },
    );
  });

  it('reads every two-decimal string exactly', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: MAX }), (minor) => {
        expect(parseAmount(formatMinor(minor), MAX)).toEqual({ ok: true, minor });
      }),
    );
  });
});

describe('command-topic messages, for any bytes', () => {
  const message = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
    fc.json().map((text) => Buffer.from(text)),
    fc
      .record(
        {
          id: fc.oneof(fc.string(), fc.uuid(), fc.integer()),
          type: fc.oneof(fc.constantFrom('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer'), fc.string()),
          user_id: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(2 ** 53)),
          amount: amountLike,
          service_id: fc.integer(),
          order_id: fc.integer(),
          recipient_id: fc.integer(),
          comment: fc.string({ maxLength: 600 }),
        },
        { requiredKeys: [] },
      )
      .map((record) => Buffer.from(JSON.stringify(record))),
  );

  it('either yields a valid command or a dead-letter code, and never throws', () => {
    fc.assert(
      fc.property(message, (bytes) => {
        const parsed = parseCommandMessage(bytes, schema);
        if (parsed.ok) {
          expect(schema.safeParse(JSON.parse(bytes.toString())).success).toBe(true);
          const amount = 'amount' in parsed.command ? parsed.command.amount : 1n;
          expect(amount > 0n).toBe(true);
        } else {
          expect(['not_json', 'invalid_command', 'empty_message']).toContain(parsed.code);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});
