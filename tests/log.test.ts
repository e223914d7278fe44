import { describe, expect, it } from 'vitest';
import { prettyLine } from '../src/log.ts';

describe('prettyLine', () => {
  it('turns a JSON log line into one readable line: time, level, source, message, the other fields', () => {
    const line = JSON.stringify({
      level: 40,
      time: '2026-12-03T21:30:01.234Z',
      service: 'balance',
      component: 'consumer',
      msg: 'partition paused',
      partition: 3,
      err: { message: 'x' },
    });
    expect(prettyLine(line)).toBe('21:30:01.234 WARN  consumer: partition paused partition=3 err={"message":"x"}\n');
  });

  it('passes through what is not JSON', () => {
    expect(prettyLine('plain text\n')).toBe('plain text\n');
  });
});
