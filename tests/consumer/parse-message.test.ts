import { describe, expect, it } from 'vitest';
import { createCommandSchema } from '../../src/commands/schema.ts';
import { MESSAGE_BYTES_MAX, parseCommandMessage } from '../../src/consumer/parse-message.ts';

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
    const parsed = parse(JSON.stringify({ id: 'ok-id', type: 'deposit', user_id: 1, amount: '-1', reply_to: 'my.replies' }));
    expect(parsed).toMatchObject({ ok: false, code: 'invalid_command', commandId: 'ok-id', replyTo: 'my.replies' });
    if (!parsed.ok) expect(parsed.message).toContain('amount');
  });

  it('does not trust an id or reply_to that breaks their own rules', () => {
    const parsed = parse(JSON.stringify({ id: 'has space', type: 'nope', reply_to: 'bad topic!' }));
    expect(parsed).toMatchObject({ ok: false, commandId: null, replyTo: null });
  });

  it.each(['[]', '42', '"text"', 'null', 'true'])('refuses the JSON value %s as invalid_command', (value) => {
    expect(parse(value)).toMatchObject({ ok: false, code: 'invalid_command' });
  });

  it('refuses a message over the size limit without parsing it', () => {
    const parsed = parse(JSON.stringify({ id: 'big', comment: 'x'.repeat(MESSAGE_BYTES_MAX) }));
    expect(parsed).toMatchObject({ ok: false, code: 'invalid_command', commandId: null });
  });
});
