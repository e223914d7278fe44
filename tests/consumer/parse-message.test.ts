import { describe, expect, it } from 'vitest';
import { createCommandSchema } from '../../src/commands/schema.ts';
import { MESSAGE_BYTES_MAX, messageTimeMs, parseCommandMessage } from '../../src/consumer/parse-message.ts';

const schema = createCommandSchema({ amountMinorMax: 100_000_000_000 });
const parse = (value: string | null) => parseCommandMessage(value === null ? null : Buffer.from(value), schema);

describe('parseCommandMessage', () => {
  it('returns the command and its fingerprint for a valid message', () => {
    const parsed = parse(JSON.stringify({ id: 'a', type: 'deposit', user_id: 1, amount: '1.00' }));
    expect(parsed.ok).toBe(true);
    if (parsed.ok) {
      expect(parsed.command).toMatchObject({ id: 'a', amount: 100n });
      expect(parsed.fingerprint).toMatch(/^[A-Za-z0-9_-]{32}$/);
    }
  });

  it('calls an empty or missing value empty_message', () => {
    expect(parse(null)).toMatchObject({ ok: false, code: 'empty_message', commandId: null });
    expect(parse('')).toMatchObject({ ok: false, code: 'empty_message' });
  });

  it('calls a non-JSON value not_json', () => {
    expect(parse('{"id": "a", ')).toMatchObject({ ok: false, code: 'not_json', commandId: null });
  });

  it('keeps a usable id and reply_to of an invalid command, so it can be answered', () => {
    const parsed = parse(
      JSON.stringify({ id: 'ok-id', type: 'deposit', user_id: 1, amount: '-1', reply_to: 'balance.replies.mine' }),
    );
    expect(parsed).toMatchObject({
      ok: false,
      code: 'invalid_command',
      commandId: 'ok-id',
      replyTo: 'balance.replies.mine',
    });
    if (!parsed.ok) expect(parsed.message).toContain('amount');
  });

  it('does not trust an id or reply_to that breaks their own rules', () => {
    const parsed = parse(JSON.stringify({ id: 'has space', type: 'nope', reply_to: 'bad topic!' }));
    expect(parsed).toMatchObject({ ok: false, commandId: null, replyTo: null });
  });

  it.each([
    '__consumer_offsets',
    'balance.commands',
    'balance.commands.dlq',
    'someone.elses.topic',
    'balance.replies.',
    'bad topic!',
  ])('rejects a command whose reply_to is %s, and answers it on the default reply topic', (topic) => {
    const parsed = parse(JSON.stringify({ id: 'r1', type: 'deposit', user_id: 1, amount: '1.00', reply_to: topic }));
    expect(parsed).toMatchObject({ ok: false, code: 'invalid_command', commandId: 'r1', replyTo: null });
    if (!parsed.ok) expect(parsed.message).toContain('reply_to');
  });

  it('accepts reply_to on the reply topic or under its prefix', () => {
    for (const topic of ['balance.replies', 'balance.replies.shop-1']) {
      expect(
        parse(JSON.stringify({ id: 'r2', type: 'deposit', user_id: 1, amount: '1.00', reply_to: topic })),
      ).toMatchObject({ ok: true });
    }
  });

  it.each([
    ['a NUL', String.raw`a\u0000b`],
    ['an escape', String.raw`\u001b[31mred`],
    ['a lone surrogate', String.raw`\ud800`],
  ])('rejects a comment with %s as invalid_command, keeping the id to answer', (_, escaped) => {
    const parsed = parse(`{"id":"n1","type":"deposit","user_id":1,"amount":"1.00","comment":"${escaped}"}`);
    expect(parsed).toMatchObject({ ok: false, code: 'invalid_command', commandId: 'n1' });
    if (!parsed.ok) expect(parsed.message).toContain('comment');
  });

  it('keeps tabs and newlines in a comment', () => {
    expect(
      parse(JSON.stringify({ id: 'n2', type: 'deposit', user_id: 1, amount: '1.00', comment: 'line 1\n\tline 2' })),
    ).toMatchObject({ ok: true });
  });

  it('bounds a comment in characters and in bytes', () => {
    const comment = (text: string) =>
      parse(JSON.stringify({ id: 'n3', type: 'deposit', user_id: 1, amount: '1.00', comment: text }));
    expect(comment('ж'.repeat(500))).toMatchObject({ ok: true });
    expect(comment('x'.repeat(501))).toMatchObject({ ok: false, message: expect.stringContaining('500 characters') });
    expect(comment('\u{1F4B0}'.repeat(250))).toMatchObject({ ok: true });
    expect(comment('\u{1F4B0}'.repeat(251))).toMatchObject({
      ok: false,
      message: expect.stringContaining('1000 bytes'),
    });
  });

  it.each(['[]', '42', '"text"', 'null', 'true'])('refuses the JSON value %s as invalid_command', (value) => {
    expect(parse(value)).toMatchObject({ ok: false, code: 'invalid_command' });
  });

  it('refuses a message over the size limit without parsing it', () => {
    const parsed = parse(JSON.stringify({ id: 'big', comment: 'x'.repeat(MESSAGE_BYTES_MAX) }));
    expect(parsed).toMatchObject({ ok: false, code: 'invalid_command', commandId: null });
  });
});

describe('inexact JSON numbers on Kafka', () => {
  it('calls an amount JSON.parse would round or expand invalid_command, keeping the id for the reply', () => {
    for (const amount of ['10.0000000000000001', '1e2', '10.001'])
      expect(parse(`{"id":"n-1","type":"deposit","user_id":1,"amount":${amount}}`), amount).toMatchObject({
        ok: false,
        code: 'invalid_command',
        commandId: 'n-1',
      });
    expect(parse('{"id":"n-2","type":"deposit","user_id":1,"amount":10.5}')).toMatchObject({ ok: true });
  });
});

describe('messageTimeMs', () => {
  it('takes a Kafka timestamp that names an instant from 1970 to year 9999', () => {
    expect(messageTimeMs('0')).toBe(0);
    expect(messageTimeMs('1764720000000')).toBe(1_764_720_000_000);
    expect(messageTimeMs('253402300799999')).toBe(253_402_300_799_999);
  });

  it('refuses what no date can hold, so the consumer uses its own clock instead', () => {
    for (const bad of [
      '-1',
      '-9000000000000000',
      '9000000000000000',
      '253402300800000',
      '',
      '1e3',
      ' 1',
      '0x10',
      null,
      undefined,
    ])
      expect(messageTimeMs(bad), String(bad)).toBeNull();
  });
});
