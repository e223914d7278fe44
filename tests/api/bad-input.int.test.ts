/**
 * Bad input is refused with a clear 4xx and changes nothing. "Changes nothing" is only worth
 * checking where something could change: the consumer is running, and after each refused
 * request a canary deposit on the same account is sent and applied. Had the refused request
 * reached Kafka, it would be on the same partition ahead of the canary, so once the canary is
 * applied the ledger shows everything the request did.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/api/gateway.ts';
import { HTTP_KEY_CHARS_MAX } from '../../src/commands/ids.ts';
import { balancesOf } from '../helpers/commands.ts';
import { createUser, startGateway, type TestUser } from '../helpers/gateway.ts';
import { startStack, type RunningStack } from '../helpers/stack.ts';

describe('bad input is refused with a clear 4xx and changes nothing', () => {
  let stack: RunningStack;
  let gateway: Gateway;
  let alice: TestUser;
  /** Money enters the ledger through a service principal; alice's account is the one acted on. */
  let shop: TestUser;

  beforeAll(async () => {
    stack = await startStack({ limits: { replyWaitMs: 10_000 } });
    gateway = await startGateway(stack.config, stack.db, stack.kafka);
    alice = await createUser(stack.db, stack.config);
    shop = await createUser(stack.db, stack.config, 'service');
    expect((await post({ user_id: alice.id, amount: '100.00' })).statusCode).toBe(201);
  });
  afterAll(async () => {
    await gateway?.stop();
    await stack?.stop();
  });

  const post = (payload: unknown, headers: Record<string, string> = {}, url = '/api/add_funds/') =>
    gateway.app.inject({
      method: 'POST',
      url,
      headers: { ...shop.header, 'content-type': 'application/json', 'idempotency-key': randomUUID(), ...headers },
      payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
    });

  const ledger = async () => {
    const { rows } = await stack.db.pool.query<{ commands: number; held: string }>(
      "SELECT (SELECT count(*)::int FROM commands WHERE type <> 'settle') AS commands, (SELECT coalesce(sum(balance), 0)::text FROM accounts WHERE kind <> 'external') AS held",
    );
    return {
      commands: rows[0]!.commands,
      held: BigInt(rows[0]!.held),
      alice: (await balancesOf(stack.db.pool, alice.id)).available,
    };
  };

  /** Sends the refused request, then a 0.01 canary behind it; the ledger must differ by the canary alone. */
  async function refusedChangesNothing(send: () => ReturnType<typeof post>, status: number) {
    const before = await ledger();
    const response = await send();
    expect(response.statusCode, response.body).toBe(status);
    const canary = await post({ user_id: alice.id, amount: '0.01' });
    expect(canary.statusCode, canary.body).toBe(201);
    expect(await ledger()).toEqual({ commands: before.commands + 1, held: before.held + 1n, alice: before.alice + 1n });
    return response;
  }

  it.each([
    [{ amount: '-1.00' }, 'amount'],
    [{ amount: '0' }, 'amount'],
    [{ amount: 'ten' }, 'amount'],
    [{ amount: '1.001' }, 'amount'],
    [{ amount: '1e3' }, 'amount'],
    [{ amount: '99999999999999999999.00' }, 'amount'],
    [{}, 'amount'],
    [{ user_id: 'one', amount: '1.00' }, 'user_id'],
    [{ user_id: 1.5, amount: '1.00' }, 'user_id'],
    [{ user_id: null, amount: '1.00' }, 'user_id'],
    [{ amount: '1.00', comment: 'a\u0000b' }, 'comment'],
  ])('400 for %j, naming %s', async (fields, field) => {
    const response = await refusedChangesNothing(() => post({ user_id: alice.id, ...fields }), 400);
    expect(response.json().code).toBe('validation_failed');
    expect(response.json().details.map((d: { field: string }) => d.field)).toContain(field);
  });

  it.each([
    ['10.0000000000000001', 'more than 2 decimals'],
    ['1e2', 'an exponent'],
    ['1E-2', 'an exponent'],
    ['123456789012345678', 'more digits'],
  ])('400 for the JSON number amount %s, which JSON.parse cannot hold exactly (%s)', async (literal, why) => {
    await refusedChangesNothing(() => post(`{"user_id": ${alice.id}, "amount": ${literal}}`), 400);
    const response = await post(`{"user_id": ${alice.id}, "amount": ${literal}}`);
    expect(response.json()).toMatchObject({ code: 'validation_failed' });
    expect(response.json().details[0].message).toContain(why);
  });

  it('answers an unauthenticated bulk holding a million-digit number with a short 400', async () => {
    const response = await gateway.app.inject({
      method: 'POST',
      url: '/api/commands/bulk',
      headers: { 'content-type': 'application/json' },
      payload: `{"commands": [{"type": "deposit", "user_id": 1, "amount": ${'9'.repeat(1_000_000)}}]}`,
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().details[0].message).toContain('more digits');
    // The literal is not echoed: a million digits in, a few hundred bytes out.
    expect(response.body.length).toBeLessThan(1_000);
  });

  it('400 for a transfer to oneself', async () => {
    const response = await refusedChangesNothing(
      () => post({ sender_id: alice.id, recipient_id: alice.id, amount: '1.00' }, {}, '/api/transfer_funds'),
      400,
    );
    expect(response.json().details[0].field).toBe('recipient_id');
  });

  it('400 for malformed JSON, 413 for a body over the limit, 415 for another content type', async () => {
    expect((await refusedChangesNothing(() => post('{"user_id": 1,'), 400)).json()).toMatchObject({
      code: 'malformed_json',
    });
    const big = await refusedChangesNothing(
      () => post({ user_id: alice.id, amount: '1.00', comment: 'x'.repeat(stack.config.http.bodyBytesMax) }),
      413,
    );
    expect(big.json().code).toBe('body_too_large');
    await refusedChangesNothing(
      () => post(`user_id=${alice.id}&amount=1`, { 'content-type': 'application/x-www-form-urlencoded' }),
      415,
    );
  });

  it('400 for an Idempotency-Key outside the allowed characters, or none at all', async () => {
    await refusedChangesNothing(
      () => post({ user_id: alice.id, amount: '1.00' }, { 'idempotency-key': 'has spaces' }),
      400,
    );
    // The documented bound (OpenAPI takes the same pattern): the longest key is taken, one more refused.
    expect(
      (await post({ user_id: alice.id, amount: '1.00' }, { 'idempotency-key': 'k'.repeat(HTTP_KEY_CHARS_MAX) }))
        .statusCode,
    ).toBe(201);
    await refusedChangesNothing(
      () => post({ user_id: alice.id, amount: '1.00' }, { 'idempotency-key': 'k'.repeat(HTTP_KEY_CHARS_MAX + 1) }),
      400,
    );
    const missing = await refusedChangesNothing(
      () =>
        gateway.app.inject({
          method: 'POST',
          url: '/api/add_funds/',
          headers: { ...shop.header, 'content-type': 'application/json' },
          payload: JSON.stringify({ user_id: alice.id, amount: '1.00' }),
        }),
      400,
    );
    expect(missing.json().code).toBe('idempotency_key_required');
  });
});
