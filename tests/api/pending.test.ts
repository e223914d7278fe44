import { describe, expect, it } from 'vitest';
import { PendingCommands } from '../../src/api/pending.ts';

describe('PendingCommands', () => {
  it('forgets the oldest entry past its size limit, and entries past their age', () => {
    const pending = new PendingCommands(2, 1_000);
    pending.add('a', 1, 0);
    pending.add('b', 2, 0);
    pending.add('c', 3, 0);
    expect([pending.owner('a', 10), pending.owner('b', 10), pending.owner('c', 10)]).toEqual([null, 2, 3]);
    expect(pending.owner('b', 2_000)).toBeNull();
  });
});
