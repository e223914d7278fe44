import { describe, expect, it } from 'vitest';
import { ReplyListener, TooManyWaitersError } from '../../src/client/reply-listener.ts';

/** Construction only asks kafkajs for a consumer object; these tests never connect it. */
const kafka = { consumer: () => ({ on: () => {}, events: { GROUP_JOIN: 'join' } }) } as never;
const log = { warn: () => {} } as never;
const reply = (id: string, fingerprint: string | null) =>
  Buffer.from(
    JSON.stringify({
      command_id: id,
      status: 'applied',
      code: 'ok',
      message: 'm',
      duplicate: false,
      fingerprint,
      transactions: [],
      balances: {},
    }),
  );

describe('ReplyListener waiting', () => {
  it('resolves null after the timeout and forgets the waiter', async () => {
    const listener = new ReplyListener(kafka, 'replies', 10, log);
    const { reply } = listener.wait('c1', 'f1', 20);
    expect(listener.pending).toBe(1);
    expect(await reply).toBeNull();
    expect(listener.pending).toBe(0);
  });

  it('resolves null at once on cancel, for a command that was never published', async () => {
    const listener = new ReplyListener(kafka, 'replies', 10, log);
    const waiting = listener.wait('c2', 'f2', 60_000);
    waiting.cancel();
    expect(await waiting.reply).toBeNull();
    expect(listener.pending).toBe(0);
  });

  it('refuses more waiters than its limit', () => {
    const listener = new ReplyListener(kafka, 'replies', 2, log);
    const a = listener.wait('a', 'f', 60_000);
    const b = listener.wait('b', 'f', 60_000);
    expect(() => listener.wait('c', 'f', 60_000)).toThrow(TooManyWaitersError);
    a.cancel();
    b.cancel();
  });
});

describe('ReplyListener trusting replies', () => {
  it('ignores and counts malformed messages for a waited-for id, without throwing, and still takes the real reply', async () => {
    const listener = new ReplyListener(kafka, 'replies', 10, log);
    const waiting = listener.wait('c', 'f', 60_000);
    for (const value of [
      Buffer.from('{not json'),
      Buffer.from('{"command_id":"c"}'),
      Buffer.from('null'),
      null,
      Buffer.from('[1,2]'),
    ]) {
      expect(() => listener.deliver(Buffer.from('c'), value)).not.toThrow();
    }
    listener.deliver(Buffer.from('c'), reply('other', 'f'));
    expect(listener.malformed).toBe(6);
    expect(listener.pending).toBe(1);
    listener.deliver(Buffer.from('c'), reply('c', 'f'));
    expect((await waiting.reply)?.command_id).toBe('c');
  });

  it('resolves a waiter only with the reply to the command it sent (same fingerprint)', async () => {
    const listener = new ReplyListener(kafka, 'replies', 10, log);
    const mine = listener.wait('k', 'mine', 60_000);
    const theirs = listener.wait('k', 'theirs', 60_000);
    listener.deliver(Buffer.from('k'), reply('k', 'theirs'));
    expect((await theirs.reply)?.fingerprint).toBe('theirs');
    expect(listener.pending).toBe(1);
    listener.deliver(Buffer.from('k'), reply('k', null));
    expect(listener.pending).toBe(1);
    listener.deliver(Buffer.from('k'), reply('k', 'mine'));
    expect((await mine.reply)?.fingerprint).toBe('mine');
  });

  it('answers two waiters of one command once as it came and once as a duplicate, so only one request says created', async () => {
    const listener = new ReplyListener(kafka, 'replies', 10, log);
    const first = listener.wait('k', 'f', 60_000);
    const second = listener.wait('k', 'f', 60_000);
    listener.deliver(Buffer.from('k'), reply('k', 'f'));
    expect([(await first.reply)?.duplicate, (await second.reply)?.duplicate]).toEqual([false, true]);
    expect(listener.pending).toBe(0);
  });

  it('takes a reply keyed by its route key from the command id inside, with one parse, and counts a bad one', async () => {
    const listener = new ReplyListener(kafka, 'replies', 10, log, undefined, undefined, 'reply-route');
    const waiting = listener.wait('c9', 'f', 60_000);
    listener.deliver(Buffer.from('reply-route'), Buffer.from('not json'));
    // A reply for a command nobody here waits for (another gateway's, on a shared partition).
    listener.deliver(Buffer.from('reply-route'), reply('c8', 'f'));
    listener.deliver(Buffer.from('reply-other'), reply('c9', 'f'));
    expect([listener.pending, listener.malformed]).toEqual([1, 1]);
    listener.deliver(Buffer.from('reply-route'), reply('c9', 'f'));
    expect((await waiting.reply)?.command_id).toBe('c9');
    expect(listener.pending).toBe(0);
  });
});
