import { describe, expect, it } from 'vitest';
import { deadLetterOf, Outbox } from '../../src/consumer/outbox.ts';

describe('deadLetterOf', () => {
  it('keeps the original key, bytes and headers, and adds why and where from', () => {
    const message = { key: Buffer.from('7'), value: Buffer.from('{oops'), offset: '12', headers: { trace: Buffer.from('abc') }, timestamp: '0', attributes: 0 };
    const dead = deadLetterOf(message as never, { topic: 'commands', partition: 3 }, { code: 'not_json', message: 'not JSON' });
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
});

describe('Outbox', () => {
  it('sends replies to the default topic unless the command named its own', () => {
    const outbox = new Outbox('replies', 'commands');
    const reply = { command_id: 'c1', status: 'applied', code: 'ok', message: '', duplicate: false, transactions: [], balances: {} } as const;
    outbox.reply(reply, undefined);
    outbox.reply({ ...reply, command_id: 'c2' }, 'theirs');
    expect(outbox.size).toBe(2);
    const sent: Array<{ topic: string; keys: unknown[] }> = [];
    const producer = {
      sendBatch: async ({ topicMessages }: { topicMessages: Array<{ topic: string; messages: Array<{ key: unknown }> }> }) => {
        for (const t of topicMessages) sent.push({ topic: t.topic, keys: t.messages.map((m) => m.key) });
      },
      send: async ({ topic, messages }: { topic: string; messages: Array<{ key: unknown }> }) => {
        sent.push({ topic, keys: messages.map((m) => m.key) });
      },
    };
    return outbox.flush(producer as never, new Set(['replies']), { warn: () => {} } as never).then(() => {
      expect(sent).toEqual([
        { topic: 'replies', keys: ['c1'] },
        { topic: 'theirs', keys: ['c2'] },
      ]);
      expect(outbox.size).toBe(0);
    });
  });

  it('skips a reply_to topic that does not exist, but fails on a core topic', async () => {
    const unknownTopic = Object.assign(new Error('This server does not host this topic-partition'), { type: 'UNKNOWN_TOPIC_OR_PARTITION' });
    const producer = { sendBatch: async () => { throw unknownTopic; }, send: async () => { throw unknownTopic; } };
    const log = { warn: () => {} };
    const reply = { command_id: 'c', status: 'applied', code: 'ok', message: '', duplicate: false, transactions: [], balances: {} } as const;
    const custom = new Outbox('replies', 'commands');
    custom.reply(reply, 'missing.topic');
    expect(await custom.flush(producer as never, new Set(['replies']), log as never)).toEqual({ skipped: 1 });
    const core = new Outbox('replies', 'commands');
    core.reply(reply, undefined);
    await expect(core.flush(producer as never, new Set(['replies']), log as never)).rejects.toThrow(/topic-partition/);
  });

  it('sends derived settles to the command topic, keyed by the recipient, before any reply', async () => {
    const outbox = new Outbox('replies', 'commands');
    const reply = { command_id: 't1', status: 'applied', code: 'ok', message: '', duplicate: false, transactions: [], balances: {} } as const;
    outbox.reply(reply, undefined);
    outbox.derive({ id: '~settle:t1', type: 'settle', user_id: 42, amount: 1_050n });
    const order: string[] = [];
    const producer = {
      send: async ({ topic, messages }: { topic: string; messages: Array<{ key: string; value: string }> }) => {
        order.push(`${topic}:${messages.map((m) => `${m.key}=${m.value}`).join(',')}`);
      },
      sendBatch: async ({ topicMessages }: { topicMessages: Array<{ topic: string }> }) => {
        order.push(...topicMessages.map((t) => t.topic));
      },
    };
    await outbox.flush(producer as never, new Set(['replies']), { warn: () => {} } as never);
    expect(order).toEqual(['commands:42={"id":"~settle:t1","type":"settle","user_id":42,"amount":"10.50"}', 'replies']);
  });

  it('sends no reply when the settles could not be published', async () => {
    const outbox = new Outbox('replies', 'commands');
    outbox.reply({ command_id: 't1', status: 'applied', code: 'ok', message: '', duplicate: false, transactions: [], balances: {} }, undefined);
    outbox.derive({ id: '~settle:t1', type: 'settle', user_id: 42, amount: 1n });
    const sentTo: string[] = [];
    const producer = {
      send: async () => { throw new Error('broker down'); },
      sendBatch: async ({ topicMessages }: { topicMessages: Array<{ topic: string }> }) => { sentTo.push(...topicMessages.map((t) => t.topic)); },
    };
    await expect(outbox.flush(producer as never, new Set(['replies']), { warn: () => {} } as never)).rejects.toThrow('broker down');
    expect(sentTo).toEqual([]);
  });
});
