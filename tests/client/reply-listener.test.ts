import { describe, expect, it } from 'vitest';
import { ReplyListener, TooManyWaitersError } from '../../src/client/reply-listener.ts';

/** Construction only asks kafkajs for a consumer object; these tests never connect it. */
const kafka = { consumer: () => ({ on: () => {}, events: {} }) } as never;
const log = { warn: () => {} } as never;

describe('ReplyListener waiting', () => {
  it('resolves null after the timeout and forgets the waiter', async () => {
    const listener = new ReplyListener(kafka, 'replies', 10, log);
    const { reply } = listener.wait('c1', 20);
    expect(listener.pending).toBe(1);
    expect(await reply).toBeNull();
    expect(listener.pending).toBe(0);
  });

  it('resolves null at once on cancel, for a command that was never published', async () => {
    const listener = new ReplyListener(kafka, 'replies', 10, log);
    const waiting = listener.wait('c2', 60_000);
    waiting.cancel();
    expect(await waiting.reply).toBeNull();
    expect(listener.pending).toBe(0);
  });

  it('refuses more waiters than its limit', () => {
    const listener = new ReplyListener(kafka, 'replies', 2, log);
    const a = listener.wait('a', 60_000);
    const b = listener.wait('b', 60_000);
    expect(() => listener.wait('c', 60_000)).toThrow(TooManyWaitersError);
    a.cancel();
    b.cancel();
  });
});
