import { describe, expect, it } from 'vitest';
import { eventRowsJson } from '../../../src/ledger/store/index.ts';

describe('eventRowsJson', () => {
  it('embeds each payload as it is, so PostgreSQL stores the very text that was sent', () => {
    const payload = '{"type":"balance_changed","comment":"quote \\" backslash \\\\ é \\u0007","n":[1, 2]}';
    const json = eventRowsJson([
      { userId: 7, sequence: 12n, part: 0, commandId: 'c"1', payload, hash: 'ab'.repeat(32) },
      { userId: 8, sequence: 1n, part: 1, commandId: '~http:8:k', payload: '{}', hash: null },
    ]);
    const rows = JSON.parse(json);
    expect(rows).toEqual([
      { user_id: 7, sequence: 12, part: 0, command_id: 'c"1', payload: JSON.parse(payload), hash: 'ab'.repeat(32) },
      { user_id: 8, sequence: 1, part: 1, command_id: '~http:8:k', payload: {}, hash: null },
    ]);
    // The payload's own spelling survives inside the array, whitespace and escapes included.
    expect(json).toContain(`"payload":${payload},`);
  });

  it('is an empty array for no events', () => {
    expect(eventRowsJson([])).toBe('[]');
  });
});
