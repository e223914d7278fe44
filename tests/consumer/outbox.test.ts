import { describe, expect, it } from 'vitest';
import {
  DEAD_LETTER_COPIED_HEADER_BYTES_MAX,
  DEAD_LETTER_VALUE_BYTES_MAX,
  deadLetterOf,
  messageBytes,
} from '../../src/consumer/dead-letter.ts';
import {
  byteBounded,
  Outbox,
  type OutboxSink,
  type OutgoingMessage,
  type TopicMessages,
} from '../../src/consumer/outbox.ts';
import type { CommandReply } from '../../src/ledger/outcome.ts';

const TOPICS = { commands: 'commands', replies: 'replies', deadLetters: 'dlq', events: 'events' };
const reply = (id: string): CommandReply => ({
  command_id: id,
  status: 'applied',
  code: 'ok',
  message: '',
  duplicate: false,
  fingerprint: 'f',
  transactions: [],
  balances: {},
});
const message = (offset: string, value: Buffer | null, headers: Record<string, Buffer> = {}) =>
  ({ key: Buffer.from('7'), value, offset, headers, timestamp: '0', attributes: 0 }) as never;

/** Records what was sent, in order; `targets` says what each named topic answers. */
function recordingSink(targets: Record<string, 'sent' | 'missing' | 'failed'> = {}, coreFails?: Error) {
  const sent: Array<{ kind: 'core' | 'target'; topic: string; keys: unknown[] }> = [];
  const sink: OutboxSink = {
    async sendCore(batch: readonly TopicMessages[]) {
      if (coreFails) throw coreFails;
      for (const t of batch) sent.push({ kind: 'core', topic: t.topic, keys: t.messages.map((m) => m.key) });
    },
    async sendToReplyTarget(topic: string, messages: readonly OutgoingMessage[]) {
      const outcome = targets[topic] ?? 'sent';
      if (outcome === 'sent') sent.push({ kind: 'target', topic, keys: messages.map((m) => m.key) });
      return outcome;
    },
  };
  return { sink, sent };
}

describe('deadLetterOf', () => {
  it('keeps the original key, bytes and headers, and adds why and where from', () => {
    const dead = deadLetterOf(
      message('12', Buffer.from('{oops'), { trace: Buffer.from('abc') }),
      { topic: 'commands', partition: 3 },
      { code: 'not_json', message: 'not JSON' },
    );
    expect(dead.key).toEqual(Buffer.from('7'));
    expect(dead.value).toEqual(Buffer.from('{oops'));
    expect(dead.headers).toMatchObject({
      trace: Buffer.from('abc'),
      'x-error-code': 'not_json',
      'x-error-message': 'not JSON',
      'x-source-topic': 'commands',
      'x-source-partition': '3',
      'x-source-offset': '12',
    });
  });

  it('truncates a value too large to ever be a command, and records its size', () => {
    const huge = Buffer.alloc(DEAD_LETTER_VALUE_BYTES_MAX * 3, 'x');
    const dead = deadLetterOf(
      message('1', huge),
      { topic: 'commands', partition: 0 },
      { code: 'invalid_command', message: 'too big' },
    );
    expect((dead.value as Buffer).length).toBe(DEAD_LETTER_VALUE_BYTES_MAX);
    expect(dead.headers!['x-original-bytes']).toBe(String(huge.length));
  });

  it("bounds the copied headers and never copies a producer's fake error headers", () => {
    const headers: Record<string, Buffer> = { 'x-error-code': Buffer.from('fake'), 'x-sqlstate': Buffer.from('fake') };
    for (let i = 0; i < 10; i += 1) headers[`h${i}`] = Buffer.alloc(DEAD_LETTER_COPIED_HEADER_BYTES_MAX / 4, 'y');
    const dead = deadLetterOf(
      message('1', Buffer.from('x'), headers),
      { topic: 'commands', partition: 0 },
      { code: 'not_json', message: 'm' },
    );
    expect(dead.headers!['x-error-code']).toBe('not_json');
    expect(dead.headers!['x-sqlstate']).toBeUndefined();
    expect(Number(dead.headers!['x-headers-dropped'])).toBeGreaterThan(0);
    expect(messageBytes(dead)).toBeLessThan(DEAD_LETTER_COPIED_HEADER_BYTES_MAX + 2_000);
  });
});

describe('byteBounded', () => {
  it('splits sends so that none exceeds the byte limit, keeping order', () => {
    const messages = Array.from({ length: 20 }, (_, i) => ({ key: String(i), value: Buffer.alloc(60_000) }));
    const sends = byteBounded([{ topic: 'dlq', messages }], 200_000);
    expect(sends.length).toBeGreaterThan(1);
    for (const send of sends)
      expect(send.flatMap((t) => t.messages).reduce((n, m) => n + messageBytes(m), 0)).toBeLessThanOrEqual(200_000);
    expect(sends.flatMap((s) => s.flatMap((t) => t.messages.map((m) => m.key)))).toEqual(messages.map((m) => m.key));
  });
});

describe('Outbox', () => {
  it('sends replies to the default topic unless the command named its own', async () => {
    const outbox = new Outbox(TOPICS, 900_000);
    outbox.reply(reply('c1'), undefined);
    outbox.reply(reply('c2'), 'theirs');
    outbox.reply(reply('c3'), 'replies');
    expect(outbox.size).toBe(3);
    const { sink, sent } = recordingSink();
    expect(await outbox.flush(sink)).toEqual({ undeliverable: 0 });
    expect(sent).toEqual([
      { kind: 'core', topic: 'replies', keys: ['c1', 'c3'] },
      { kind: 'target', topic: 'theirs', keys: ['c2'] },
    ]);
  });

  it('keys a reply by the reply key its message asked for, else by its command id', async () => {
    const outbox = new Outbox(TOPICS, 900_000);
    outbox.reply(reply('c1'), undefined, 'reply-gw1');
    outbox.reply(reply('c2'), undefined);
    outbox.reply(reply('c3'), 'theirs', 'reply-gw1');
    const { sink, sent } = recordingSink();
    await outbox.flush(sink);
    expect(sent).toEqual([
      { kind: 'core', topic: 'replies', keys: ['reply-gw1', 'c2'] },
      { kind: 'target', topic: 'theirs', keys: ['reply-gw1'] },
    ]);
  });

  it('counts replies a named topic did not take, but fails when a core topic does not', async () => {
    const custom = new Outbox(TOPICS, 900_000);
    custom.reply(reply('a'), 'missing.topic');
    custom.reply(reply('b'), 'refusing.topic');
    expect(await custom.flush(recordingSink({ 'missing.topic': 'missing', 'refusing.topic': 'failed' }).sink)).toEqual({
      undeliverable: 2,
    });
    const core = new Outbox(TOPICS, 900_000);
    core.reply(reply('c'), undefined);
    await expect(core.flush(recordingSink({}, new Error('broker down')).sink)).rejects.toThrow('broker down');
  });

  it('sends derived settles, with their proof, to the command topic before any reply', async () => {
    const outbox = new Outbox(TOPICS, 900_000);
    outbox.reply(reply('t1'), undefined);
    outbox.derive({ id: '~settle:t1', type: 'settle', user_id: 42, amount: 1_050n }, 'v1.k.proof');
    const sent: TopicMessages[] = [];
    await outbox.flush({ sendCore: async (batch) => void sent.push(...batch), sendToReplyTarget: async () => 'sent' });
    expect(sent.map((t) => t.topic)).toEqual(['commands', 'replies']);
    expect(sent[0]!.messages[0]).toEqual({
      key: '42',
      value: '{"id":"~settle:t1","type":"settle","user_id":42,"amount":"10.50"}',
      headers: { 'x-internal-proof': 'v1.k.proof' },
    });
  });

  it('sends no reply when the settles could not be published', async () => {
    const outbox = new Outbox(TOPICS, 900_000);
    outbox.reply(reply('t1'), undefined);
    outbox.derive({ id: '~settle:t1', type: 'settle', user_id: 42, amount: 1n }, 'proof');
    const sentTo: string[] = [];
    const sink: OutboxSink = {
      sendCore: async (batch) => {
        if (batch.some((t) => t.topic === 'commands')) throw new Error('broker down');
        sentTo.push(...batch.map((t) => t.topic));
      },
      sendToReplyTarget: async () => 'sent',
    };
    await expect(outbox.flush(sink)).rejects.toThrow('broker down');
    expect(sentTo).toEqual([]);
  });

  it('keeps every send of twenty 60 kB dead letters under the byte limit, and heartbeats between sends', async () => {
    const outbox = new Outbox(TOPICS, 300_000);
    for (let i = 0; i < 20; i += 1)
      outbox.deadLetter(
        message(String(i), Buffer.alloc(60_000, 'z')),
        { topic: 'commands', partition: 0 },
        { code: 'invalid_command', message: 'bad' },
      );
    const sizes: number[] = [];
    let heartbeats = 0;
    await outbox.flush(
      {
        sendCore: async (batch) =>
          void sizes.push(batch.flatMap((t) => t.messages).reduce((n, m) => n + messageBytes(m), 0)),
        sendToReplyTarget: async () => 'sent',
      },
      async () => void (heartbeats += 1),
    );
    expect(sizes.length).toBeGreaterThanOrEqual(4);
    for (const size of sizes) expect(size).toBeLessThanOrEqual(300_000);
    expect(heartbeats).toBe(sizes.length);
  });
});
