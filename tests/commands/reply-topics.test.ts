import { describe, expect, it } from 'vitest';
import { replyKeyOf } from '../../src/commands/reply-topics.ts';

describe('replyKeyOf', () => {
  it('takes a reply key made of topic-name characters and colons, up to 64 of them, as string or bytes', () => {
    expect(replyKeyOf('reply-0a1b2c3d4e5f')).toBe('reply-0a1b2c3d4e5f');
    expect(replyKeyOf(Buffer.from('gw:1.a_b'))).toBe('gw:1.a_b');
    expect(replyKeyOf('k'.repeat(64))).toBe('k'.repeat(64));
  });

  it('ignores a missing, null, empty, long or odd key, so its reply is keyed by the command id', () => {
    for (const header of [
      undefined,
      null,
      '',
      'k'.repeat(65),
      Buffer.alloc(100_000, 0x61),
      'a b',
      'é',
      'a\nb',
      Buffer.from([0xff]),
    ])
      expect(replyKeyOf(header)).toBeNull();
  });
});
