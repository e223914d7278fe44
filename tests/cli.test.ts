import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCli, UsageError } from '../src/cli.ts';

describe('runCli', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    process.exitCode = 0;
  });

  it('prints a usage mistake as one line, without a stack, and exits 1', async () => {
    const printed: unknown[] = [];
    vi.spyOn(console, 'error').mockImplementation((value: unknown) => void printed.push(value));
    await runCli(async () => {
      throw new UsageError('the password must be 8 to 1024 characters');
    });
    expect(printed).toEqual(['error: the password must be 8 to 1024 characters']);
    expect(process.exitCode).toBe(1);
  });

  it('prints anything unexpected in full, so it can be debugged', async () => {
    const printed: unknown[] = [];
    vi.spyOn(console, 'error').mockImplementation((value: unknown) => void printed.push(value));
    const bug = new TypeError('undefined is not a function');
    await runCli(async () => {
      throw bug;
    });
    expect(printed).toEqual([bug]);
    expect(process.exitCode).toBe(1);
  });
});
