import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/api/gateway.ts';
import type { Config } from '../../src/config.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { balancesOf, waitForSettles } from '../helpers/commands.ts';
import { createUser, startGateway, type TestUser } from '../helpers/gateway.ts';
import { eventually, startStack, type RunningStack, type TestDatabase } from '../helpers/stack.ts';

describe('command endpoints through the real stack', () => {
  let stack: RunningStack;
  let db: TestDatabase;
  let config: Config;
  let gateway: Gateway;
  let service: TestUser;

  beforeAll(async () => {
    stack = await startStack({ limits: { replyWaitMs: 15_000 } });
    ({ db, config } = stack);
    gateway = await startGateway(config, db, stack.kafka);
    service = await createUser(db, config, 'service');
  });
  afterAll(async () => {
    await gateway?.stop();
    await stack?.stop();
  });

  const post = (url: string, user: TestUser, payload: unknown, headers: Record<string, string> = {}) =>
    gateway.app.inject({ method: 'POST', url, headers: { ...user.header, ...headers }, payload: payload as object });

  it('deposits and answers 201 with the seed transaction JSON', async () => {
    const user = await createUser(db, config);
    const response = await post('/api/add_funds/', user, { user_id: user.id, amount: '10.50', comment: 'first' });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({
      user: user.id,
      user_id: user.id,
      amount: '10.50',
      transaction_type: 'deposit',
      comment: 'first',
      status: 'applied',
      balances: { [String(user.id)]: { available: '10.50', reserved: '0.00' } },
    });
    expect(typeof response.json().id).toBe('number');
    expect(Date.parse(response.json().created_at)).not.toBeNaN();
  });

  it('answers 400 to a comment with a NUL or another control character, and the next deposit applies', async () => {
    const user = await createUser(db, config);
    for (const comment of ['a\u0000b', '\u001b[2J', 'bell\u0007', 'lone \ud800']) {
      const response = await post('/api/add_funds/', user, { user_id: user.id, amount: '1.00', comment });
      expect(response.statusCode, JSON.stringify(comment)).toBe(400);
      expect(response.json()).toMatchObject({ code: 'validation_failed', details: [{ field: 'comment' }] });
    }
    const next = await post('/api/add_funds/', user, { user_id: user.id, amount: '2.00', comment: 'tab\tand\nnewline are fine' });
    expect(next.statusCode).toBe(201);
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 200n, reserved: 0n, incoming: 0n });
  });

  it('answers a login with a NUL in the username with 400, not 500', async () => {
    const response = await gateway.app.inject({ method: 'POST', url: '/api/token/', payload: { username: 'ad\u0000min', password: 'whatever-password' } });
    expect(response.statusCode).toBe(400);
  });

  it('runs reserve, deduct (revenue recognition) and cancel, with their rejections', async () => {
    const user = await createUser(db, config);
    await post('/api/add_funds', user, { user_id: user.id, amount: 100 });
    const order = { user_id: user.id, service_id: 5, order_id: 55 };
    expect((await post('/api/reserve_funds', user, { ...order, amount: '30.00' })).statusCode).toBe(201);
    const again = await post('/api/reserve_funds', user, { ...order, amount: '1.00' });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('reservation_exists');
    const tooMuch = await post('/api/deduct_funds', user, { ...order, amount: '30.01' });
    expect(tooMuch.json().code).toBe('amount_exceeds_reservation');
    const deduct = await post('/api/deduct_funds', user, { ...order, amount: '20.00' });
    expect(deduct.statusCode).toBe(201);
    expect(deduct.json()).toMatchObject({ amount: '-20.00', transaction_type: 'capture', service_id: 5, order_id: 55 });
    const cancelled = await post('/api/cancel_reservation', user, order);
    expect(cancelled.json().code).toBe('reservation_not_found');
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 8000n, reserved: 0n, incoming: 0n });
  });

  it('refuses a deduct for an order never reserved, and changes nothing', async () => {
    const user = await createUser(db, config);
    await post('/api/add_funds', user, { user_id: user.id, amount: '5.00' });
    const response = await post('/api/deduct_funds', user, { user_id: user.id, service_id: 1, order_id: 404, amount: '1.00' });
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({ code: 'reservation_not_found' });
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 500n, reserved: 0n, incoming: 0n });
  });

  it('transfers, answering sender and recipient transactions', async () => {
    const sender = await createUser(db, config);
    const recipient = await createUser(db, config);
    await post('/api/add_funds', sender, { user_id: sender.id, amount: '10.00' });
    const response = await post('/api/transfer_funds', sender, { sender_id: sender.id, recipient_id: recipient.id, amount: '4.00' });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({
      sender_transaction: { user: sender.id, amount: '-4.00', transaction_type: 'transfer_out' },
      recipient_transaction: { user: recipient.id, amount: '4.00', transaction_type: 'transfer_in' },
    });
    const broke = await post('/api/withdraw_funds', sender, { user_id: sender.id, amount: '6.01' });
    expect(broke.json().code).toBe('insufficient_funds');
    // The answer reports the sender's balances; the recipient's credit settles on their own partition.
    expect(response.json().balances).toEqual({ [String(sender.id)]: { available: '6.00', reserved: '0.00' } });
    // The settle was on the recipient's partition before the answer left, so the recipient can
    // spend the money in the very next request.
    const spend = await post('/api/withdraw_funds', recipient, { user_id: recipient.id, amount: '3.00' });
    expect(spend.statusCode).toBe(201);
    const seen = await gateway.app.inject({ method: 'GET', url: `/api/balances/?user_id=${recipient.id}`, headers: recipient.header });
    expect(seen.json()).toEqual({ user_id: recipient.id, amount: '1.00', reserved: '0.00', incoming: '0.00', currency: 'RUB' });
  });

  it('tells someone reusing another user\'s Idempotency-Key nothing about that command', async () => {
    const owner = await createUser(db, config);
    const other = await createUser(db, config);
    const key = `secret-${randomUUID()}`;
    expect((await post('/api/add_funds', owner, { user_id: owner.id, amount: '50.00' }, { 'idempotency-key': key })).statusCode).toBe(201);
    const probe = await post('/api/add_funds', other, { user_id: other.id, amount: '1.00' }, { 'idempotency-key': key });
    expect(probe.statusCode).toBe(409);
    expect(probe.json()).toEqual({ code: 'idempotency_key_reused', message: expect.any(String), details: { code: 'idempotency_key_reused', command_id: key } });
  });

  it('answers the same Idempotency-Key and body with the same result and no second effect', async () => {
    const user = await createUser(db, config);
    const key = randomUUID();
    const first = await post('/api/add_funds', user, { user_id: user.id, amount: '3.00' }, { 'idempotency-key': key });
    const second = await post('/api/add_funds', user, { user_id: user.id, amount: 3 }, { 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(200);
    expect(second.json().id).toBe(first.json().id);
    const reused = await post('/api/add_funds', user, { user_id: user.id, amount: '4.00' }, { 'idempotency-key': key });
    expect(reused.statusCode).toBe(409);
    expect(reused.json().code).toBe('idempotency_key_reused');
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 300n, reserved: 0n, incoming: 0n });
  });

  it('answers 202 with a Location at once when asked to, and the command can be polled', async () => {
    const user = await createUser(db, config);
    const response = await post('/api/add_funds', user, { user_id: user.id, amount: '2.00' }, { prefer: 'respond-async' });
    expect(response.statusCode).toBe(202);
    const location = response.headers.location as string;
    expect(location).toBe(`/api/commands/${response.json().command_id}`);
    const polled = await eventually(async () => {
      const poll = await gateway.app.inject({ method: 'GET', url: location, headers: user.header });
      return poll.json().status === 'applied' ? poll.json() : undefined;
    });
    expect(polled).toMatchObject({ status: 'applied', code: 'ok', amount: '2.00' });
    const stranger = await createUser(db, config);
    expect((await gateway.app.inject({ method: 'GET', url: location, headers: stranger.header })).statusCode).toBe(403);
  });

  it('loses none of 200 concurrent deposits to one user', async () => {
    const user = await createUser(db, config);
    const responses = await Promise.all(Array.from({ length: 200 }, () => post('/api/add_funds', service, { user_id: user.id, amount: '1.00' })));
    expect(responses.map((r) => r.statusCode).filter((s) => s !== 201)).toEqual([]);
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 20_000n, reserved: 0n, incoming: 0n });
  });

  it('accepts exactly 10 of 60 concurrent 1.00 reserves against 10.00', async () => {
    const user = await createUser(db, config);
    await post('/api/add_funds', user, { user_id: user.id, amount: '10.00' });
    const responses = await Promise.all(
      Array.from({ length: 60 }, (_, i) => post('/api/reserve_funds', user, { user_id: user.id, service_id: 9, order_id: 1_000 + i, amount: '1.00' })),
    );
    const codes = responses.map((r) => r.json().code ?? r.json().status);
    expect(codes.filter((c) => c === 'applied')).toHaveLength(10);
    expect(codes.filter((c) => c === 'insufficient_funds')).toHaveLength(50);
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 0n, reserved: 1_000n, incoming: 0n });
  });

  it('applies 50 opposite concurrent transfers between two users and conserves money', async () => {
    const a = await createUser(db, config);
    const b = await createUser(db, config);
    await post('/api/add_funds', service, { user_id: a.id, amount: '100.00' });
    await post('/api/add_funds', service, { user_id: b.id, amount: '100.00' });
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        i % 2 === 0
          ? post('/api/transfer_funds', a, { sender_id: a.id, recipient_id: b.id, amount: '1.00' })
          : post('/api/transfer_funds', b, { sender_id: b.id, recipient_id: a.id, amount: '1.00' }),
      ),
    );
    expect(responses.map((r) => r.statusCode).filter((s) => s !== 201)).toEqual([]);
    await waitForSettles(db.pool);
    const total = (await balancesOf(db.pool, a.id)).available + (await balancesOf(db.pool, b.id)).available;
    expect(total).toBe(20_000n);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });
});
