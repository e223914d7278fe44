import { describe, expect, it } from 'vitest';
import { backoffFor, withRetry } from '../src/retry.ts';

describe('withRetry', () => {
  it('retries a transient failure up to the bound, then succeeds', async () => {
    let calls = 0;
    const result = await withRetry(
      async () => {
        calls += 1;
        if (calls < 3) throw new Error('deadlock');
        return 'done';
      },
      { retriesMax: 5, backoffMs: 1, isTransient: () => true },
    );
    expect(result).toBe('done');
    expect(calls).toBe(3);
  });

  it('gives up after retriesMax retries with the last error', async () => {
    let calls = 0;
    const failing = withRetry(
      async () => {
        calls += 1;
        throw new Error(`attempt ${calls}`);
      },
      { retriesMax: 2, backoffMs: 1, isTransient: () => true },
    );
    await expect(failing).rejects.toThrow('attempt 3');
    expect(calls).toBe(3);
  });

  it('does not retry an error that is not transient', async () => {
    let calls = 0;
    const failing = withRetry(
      async () => {
        calls += 1;
        throw new Error('bug');
      },
      { retriesMax: 5, backoffMs: 1, isTransient: () => false },
    );
    await expect(failing).rejects.toThrow('bug');
    expect(calls).toBe(1);
  });

  it('backs off exponentially within a ceiling', () => {
    for (let attempt = 0; attempt < 20; attempt += 1) {
      const wait = backoffFor(attempt, { backoffMs: 50, backoffMsMax: 1_000 });
      expect(wait).toBeGreaterThanOrEqual(Math.min(50 * 2 ** attempt, 1_000) / 2);
      expect(wait).toBeLessThanOrEqual(1_000);
    }
  });
});
