import { describe, expect, it } from 'vitest';
import { commandFingerprint, createCommandSchema } from '../../src/commands/schema.ts';
import { replyTopicPolicyOf, replyTopicProblem } from '../../src/commands/reply-topics.ts';

const schema = createCommandSchema({ amountMinorMax: 100_000_000_000 });

describe('the command schema', () => {
  it('accepts each command type and converts the amount to minor units', () => {
    const cases = [
      { id: 'a1', type: 'deposit', user_id: 2, amount: '10.00' },
      { id: 'a2', type: 'withdraw', user_id: 2, amount: 5 },
      { id: 'a3', type: 'reserve', user_id: 2, service_id: 101, order_id: 1001, amount: '1.50' },
      { id: 'a4', type: 'capture', user_id: 2, service_id: 101, order_id: 1001, amount: '1.00' },
      { id: 'a5', type: 'release', user_id: 2, service_id: 101, order_id: 1001 },
      { id: 'a6', type: 'transfer', user_id: 2, recipient_id: 3, amount: '0.01', comment: 'rent' },
    ];
    for (const input of cases) expect(schema.safeParse(input).success, input.type).toBe(true);
    expect(schema.parse(cases[0]).type === 'deposit' && schema.parse(cases[0])).toMatchObject({ amount: 1000n });
  });

  it('accepts a UUID as the id', () => {
    expect(
      schema.safeParse({ id: '3b241101-e2bb-4255-8caf-4136c566a962', type: 'deposit', user_id: 1, amount: 1 }).success,
    ).toBe(true);
  });

  it.each([
    [{ type: 'deposit', user_id: 2, amount: '1' }, 'id'],
    [{ id: 'x'.repeat(129), type: 'deposit', user_id: 2, amount: '1' }, 'id'],
    [{ id: 'bad id', type: 'deposit', user_id: 2, amount: '1' }, 'id'],
    [{ id: 'a', type: 'steal', user_id: 2, amount: '1' }, 'type'],
    [{ id: 'a', type: 'deposit', user_id: 0, amount: '1' }, 'user_id'],
    [{ id: 'a', type: 'deposit', user_id: 1.5, amount: '1' }, 'user_id'],
    [{ id: 'a', type: 'deposit', user_id: '2', amount: '1' }, 'user_id'],
    [{ id: 'a', type: 'deposit', user_id: 2 ** 53, amount: '1' }, 'user_id'],
    [{ id: 'a', type: 'deposit', user_id: 2, amount: '-1' }, 'amount'],
    [{ id: 'a', type: 'deposit', user_id: 2, amount: '1.001' }, 'amount'],
    [{ id: 'a', type: 'deposit', user_id: 2 }, 'amount'],
    [{ id: 'a', type: 'reserve', user_id: 2, order_id: 1, amount: '1' }, 'service_id'],
    [{ id: 'a', type: 'transfer', user_id: 2, amount: '1' }, 'recipient_id'],
    [{ id: 'a', type: 'deposit', user_id: 2, amount: '1', comment: 'x'.repeat(501) }, 'comment'],
    [{ id: 'a', type: 'deposit', user_id: 2, amount: '1', reply_to: 'no spaces' }, 'reply_to'],
    // Replies there would look like events to every subscriber.
    [{ id: 'a', type: 'deposit', user_id: 2, amount: '1', reply_to: 'balance.events' }, 'reply_to'],
  ])('refuses %j, naming %s', (input, field) => {
    const result = schema.safeParse(input);
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((issue) => issue.path.join('.'))).toContain(field);
  });
});

describe('commandFingerprint', () => {
  it('is the same however the amount was spelled, and ignores reply_to', () => {
    const a = schema.parse({ id: 'k', type: 'deposit', user_id: 2, amount: '10.50' });
    const b = schema.parse({
      id: 'k',
      type: 'deposit',
      user_id: 2,
      amount: 10.5,
      reply_to: 'balance.replies.elsewhere',
    });
    expect(commandFingerprint(a)).toBe(commandFingerprint(b));
  });

  it('differs when what the command does differs', () => {
    const base = { id: 'k', type: 'deposit', user_id: 2, amount: '10.50' };
    const fingerprint = commandFingerprint(schema.parse(base));
    expect(commandFingerprint(schema.parse({ ...base, amount: '10.51' }))).not.toBe(fingerprint);
    expect(commandFingerprint(schema.parse({ ...base, user_id: 3 }))).not.toBe(fingerprint);
    expect(commandFingerprint(schema.parse({ ...base, type: 'withdraw' }))).not.toBe(fingerprint);
    expect(commandFingerprint(schema.parse({ ...base, comment: 'x' }))).not.toBe(fingerprint);
  });
});

describe('reply_to under a wide prefix', () => {
  it('still refuses the command, dead-letter and events topics', () => {
    const policy = replyTopicPolicyOf({
      commands: 'balance.commands',
      replies: 'balance.replies',
      deadLetters: 'balance.commands.dlq',
      events: 'balance.events',
      replyPrefix: 'balance.',
    });
    expect(replyTopicProblem('balance.mine', policy)).toBeNull();
    for (const topic of ['balance.commands', 'balance.commands.dlq', 'balance.events'])
      expect(replyTopicProblem(topic, policy), topic).toBe('must not be the command, dead-letter or events topic');
  });
});
