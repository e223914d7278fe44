import { describe, expect, it } from 'vitest';
import { inexactNumberProblem } from '../../src/commands/json-numbers.ts';

describe('inexactNumberProblem', () => {
  it('accepts the numbers a client writes for ids and amounts with up to two decimals', () => {
    for (const text of [
      '{"user_id": 1, "amount": 10.5}',
      '{"amount": 0.01, "order_id": 123456789012345}',
      '{"user_id": 9007199254740991}',
      '{"amount": -5}',
      '[0, 1.25, 999999999999.99]',
      '{"comment": "1e5 and 10.0000000000000001 inside a string", "amount": "10.00"}',
      '{"comment": "a \\" quote then 1e9", "amount": 1}',
    ])
      expect(inexactNumberProblem(text), text).toBeNull();
  });

  it('refuses what JSON.parse would round or expand: exponents, a third decimal, too many digits', () => {
    for (const text of [
      '{"amount": 10.0000000000000001}',
      '{"amount": 1e2}',
      '{"amount": 1E-2}',
      '{"amount": 10.001}',
      '{"user_id": 12345678901234567890}',
      '{"user_id": 9007199254740993}',
      '{"amount": 1234567890123456.5}',
      '[1, 2, 3.141]',
    ])
      expect(inexactNumberProblem(text), text).not.toBeNull();
  });

  it('refuses a literal of a million digits and quotes only its start', () => {
    for (const literal of ['9'.repeat(1_000_000), `-${'1'.repeat(1_000_000)}`, `1.${'0'.repeat(1_000_000)}1`]) {
      const problem = inexactNumberProblem(`{"amount": ${literal}}`);
      expect(problem).toMatch(/\.\.\. \(1,?00000[0-9] characters\)/);
      expect(problem!.length).toBeLessThan(200);
    }
  });
});
