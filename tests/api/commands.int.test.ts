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

  /** Every money-moving request carries a fresh Idempotency-Key unless the test gives one. */
  const post = (url: string, caller: TestUser, payload: unknown, headers: Record<string, string> = {}) =>
    gateway.app.inject({
      method: 'POST',
      url,
      headers: { ...caller.header, 'idempotency-key': randomUUID(), ...headers },
      payload: payload as object,
    });

  it('deposits and answers 201 with the seed transaction JSON', async () => {
    const user = await createUser(db, config);
    const response = await post('/api/add_funds/', service, { user_id: user.id, amount: '10.50', comment: 'first' });
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

  it('answers two concurrent requests with one key once 201 and once 200 as a duplicate, and applies the deposit once', async () => {
    const user = await createUser(db, config);
    const key = randomUUID();
    const body = { user_id: user.id, amount: '2.00' };
    const answers = await Promise.all(
      [0, 1].map(() => post('/api/add_funds/', service, body, { 'idempotency-key': key })),
    );
    expect(answers.map((a) => a.statusCode).sort()).toEqual([200, 201]);
    expect(answers.map((a) => a.json().duplicate).sort()).toEqual([false, true]);
    expect(await balancesOf(db.pool, user.id)).toMatchObject({ available: 200n });
  });

  it('answers 400 to a comment with a NUL or another control character, and the next deposit applies', async () => {
    const user = await createUser(db, config);
    for (const comment of ['a\u0000b', '\u001b[2J', 'bell\u0007', 'lone \ud800']) {
      const response = await post('/api/add_funds/', service, { user_id: user.id, amount: '1.00', comment });
      expect(response.statusCode, JSON.stringify(comment)).toBe(400);
      expect(response.json()).toMatchObject({ code: 'validation_failed', details: [{ field: 'comment' }] });
    }
    const next = await post('/api/add_funds/', service, {
      user_id: user.id,
      amount: '2.00',
      comment: 'tab\tand\nnewline are fine',
    });
    expect(next.statusCode).toBe(201);
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 200n, reserved: 0n, incoming: 0n });
  });

  it('answers a login with a NUL in the username with 400, not 500', async () => {
    const response = await gateway.app.inject({
      method: 'POST',
      url: '/api/token/',
      payload: { username: 'ad\u0000min', password: 'whatever-password' },
    });
    expect(response.statusCode).toBe(400);
  });

  it('runs reserve, deduct (revenue recognition) and cancel, with their rejections', async () => {
    const user = await createUser(db, config);
    await post('/api/add_funds', service, { user_id: user.id, amount: 100 });
    const order = { user_id: user.id, service_id: 5, order_id: 55 };
    expect((await post('/api/reserve_funds', service, { ...order, amount: '30.00' })).statusCode).toBe(201);
    const again = await post('/api/reserve_funds', service, { ...order, amount: '1.00' });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('reservation_exists');
    const tooMuch = await post('/api/deduct_funds', service, { ...order, amount: '30.01' });
    expect(tooMuch.json().code).toBe('amount_exceeds_reservation');
    const deduct = await post('/api/deduct_funds', service, { ...order, amount: '20.00' });
    expect(deduct.statusCode).toBe(201);
    expect(deduct.json()).toMatchObject({ amount: '-20.00', transaction_type: 'capture', service_id: 5, order_id: 55 });
    const cancelled = await post('/api/cancel_reservation', service, order);
    expect(cancelled.json().code).toBe('reservation_not_found');
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 8000n, reserved: 0n, incoming: 0n });
  });

  it('takes expires_in_s on a reserve: the hold returns by itself, and a deduct after it is 409 reservation_expired', async () => {
    const user = await createUser(db, config);
    await post('/api/add_funds', service, { user_id: user.id, amount: '10.00' });
    const order = { user_id: user.id, service_id: 5, order_id: 56 };
    for (const expires_in_s of [0, 2_678_401, 1.5, '1', null]) {
      const refused = await post('/api/reserve_funds', service, { ...order, amount: '1.00', expires_in_s });
      expect(refused.statusCode, JSON.stringify(expires_in_s)).toBe(400);
      expect(refused.json().details.map((d: { field: string }) => d.field)).toContain('expires_in_s');
    }
    const held = await post('/api/reserve_funds', service, { ...order, amount: '4.00', expires_in_s: 1 });
    expect(held.statusCode, held.body).toBe(201);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline && (await balancesOf(db.pool, user.id)).available !== 1_000n)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 1_000n, reserved: 0n, incoming: 0n });
    const late = await post('/api/deduct_funds', service, { ...order, amount: '4.00' });
    expect(late.statusCode).toBe(409);
    expect(late.json().code).toBe('reservation_expired');
    const history = await gateway.app.inject({
      method: 'GET',
      url: `/api/transactions/?user_id=${user.id}`,
      headers: service.header,
    });
    expect(history.json().items[0]).toMatchObject({ transaction_type: 'expire', amount: '4.00', order_id: 56 });
  });

  it("sets, lists and removes threshold alerts: ids are the keys, other callers' keys masked for users", async () => {
    const user = await createUser(db, config);
    const set = await post(
      '/api/balance_alerts/',
      user,
      { user_id: user.id, below: '5.00' },
      { 'idempotency-key': 'low' },
    );
    expect(set.statusCode).toBe(201);
    expect(set.json()).toMatchObject({ command_id: 'low', status: 'applied', transactions: [] });
    const byService = await post('/api/balance_alerts/', service, { user_id: user.id, above: '100.00' });
    expect(byService.statusCode).toBe(201);
    const both = await post('/api/balance_alerts/', user, { user_id: user.id, below: '1.00', above: '2.00' });
    expect(both.statusCode).toBe(400);

    const list = async (caller: TestUser) =>
      (
        await gateway.app.inject({
          method: 'GET',
          url: `/api/balance_alerts/?user_id=${user.id}`,
          headers: caller.header,
        })
      )
        .json()
        .alerts.map((a: { alert_id: string; direction: string; threshold: string; past: boolean }) => [
          a.alert_id,
          a.direction,
          a.threshold,
          a.past,
        ]);
    const serviceKey = byService.json().command_id;
    // The balance is 0.00: already below 5.00 when registered (past), not above 100.00.
    expect(await list(user)).toContainEqual(['low', 'below', '5.00', true]);
    expect((await list(user)).find((a: string[]) => a[1] === 'above')[0]).toMatch(/^~other:/);
    expect(await list(service)).toContainEqual([`~http:${user.id}:low`, 'below', '5.00', true]);
    expect(await list(service)).toContainEqual([serviceKey, 'above', '100.00', false]);

    // A user names only their own alerts: the service's, even by its full id, is not theirs to remove.
    const serviceAlertId = `~http:${service.id}:${serviceKey}`;
    const refused = await post('/api/balance_alerts/remove/', user, { user_id: user.id, alert_id: serviceAlertId });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toMatchObject({ code: 'validation_failed', details: [{ field: 'alert_id' }] });
    const removed = await post('/api/balance_alerts/remove/', user, { user_id: user.id, alert_id: 'low' });
    expect(removed.statusCode).toBe(201);
    const again = await post('/api/balance_alerts/remove/', user, { user_id: user.id, alert_id: 'low' });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toMatchObject({ code: 'alert_not_found' });
    expect(await list(service)).toEqual([[serviceKey, 'above', '100.00', false]]);
  });

  it('refuses a deduct for an order never reserved, and changes nothing', async () => {
    const user = await createUser(db, config);
    await post('/api/add_funds', service, { user_id: user.id, amount: '5.00' });
    const response = await post('/api/deduct_funds', service, {
      user_id: user.id,
      service_id: 1,
      order_id: 404,
      amount: '1.00',
    });
    expect(response.statusCode).toBe(409);
    expect(response.json()).toMatchObject({ code: 'reservation_not_found' });
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 500n, reserved: 0n, incoming: 0n });
  });

  it('transfers, answering sender and recipient transactions', async () => {
    const sender = await createUser(db, config);
    const recipient = await createUser(db, config);
    await post('/api/add_funds', service, { user_id: sender.id, amount: '10.00' });
    const response = await post('/api/transfer_funds', sender, {
      sender_id: sender.id,
      recipient_id: recipient.id,
      amount: '4.00',
    });
    expect(response.statusCode).toBe(201);
    expect(response.json()).toMatchObject({
      sender_transaction: { user: sender.id, amount: '-4.00', transaction_type: 'transfer_out' },
      recipient_transaction: { user: recipient.id, amount: '4.00', transaction_type: 'transfer_in' },
    });
    const broke = await post('/api/withdraw_funds', service, { user_id: sender.id, amount: '6.01' });
    expect(broke.json().code).toBe('insufficient_funds');
    // The answer reports the sender's balances; the recipient's credit settles on their own partition.
    expect(response.json().balances).toEqual({ [String(sender.id)]: { available: '6.00', reserved: '0.00' } });
    // The settle was on the recipient's partition before the answer left, so the recipient can
    // spend the money in the very next request.
    const spend = await post('/api/withdraw_funds', service, { user_id: recipient.id, amount: '3.00' });
    expect(spend.statusCode).toBe(201);
    const seen = await gateway.app.inject({
      method: 'GET',
      url: `/api/balances/?user_id=${recipient.id}`,
      headers: recipient.header,
    });
    expect(seen.json()).toEqual({
      user_id: recipient.id,
      amount: '1.00',
      reserved: '0.00',
      incoming: '0.00',
      currency: 'RUB',
      version: 2, // the settle, then the withdrawal
      frozen: false,
    });
  });

  it('refuses a transfer to an id that never held an account with 409 recipient_not_found, and sends nothing', async () => {
    const sender = await createUser(db, config);
    await post('/api/add_funds', service, { user_id: sender.id, amount: '10.00' });
    const nobody = Number.MAX_SAFE_INTEGER - Math.floor(Math.random() * 1e6);
    const key = randomUUID();
    const refused = await post(
      '/api/transfer_funds',
      sender,
      { sender_id: sender.id, recipient_id: nobody, amount: '4.00' },
      { 'idempotency-key': key },
    );
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ code: 'recipient_not_found', details: { recipient_id: nobody } });
    // Nothing reached the ledger: no command under that key, the sender keeps everything.
    const { rows } = await db.pool.query('SELECT 1 FROM commands WHERE id = $1', [`~http:${sender.id}:${key}`]);
    expect(rows).toHaveLength(0);
    expect(await balancesOf(db.pool, sender.id)).toMatchObject({ available: 1000n });
    // A registered recipient on the same request path still works (the canary).
    const recipient = await createUser(db, config);
    const sent = await post('/api/transfer_funds', sender, {
      sender_id: sender.id,
      recipient_id: recipient.id,
      amount: '4.00',
    });
    expect(sent.statusCode).toBe(201);
  });

  it("reads a transfer back at once: the recipient's balance includes the credit, and a service sees it in the answer", async () => {
    const [sender, recipient] = [await createUser(db, config), await createUser(db, config)];
    await post('/api/add_funds', service, { user_id: sender.id, amount: '10.00' });
    await post('/api/add_funds', service, { user_id: recipient.id, amount: '1.00' });
    // Transfers by the service, which may see both balances in the answer.
    const byService = await post('/api/transfer_funds', service, {
      sender_id: sender.id,
      recipient_id: recipient.id,
      amount: '4.00',
    });
    expect(byService.statusCode).toBe(201);
    expect(byService.json().balances[String(recipient.id)]).toMatchObject({
      reserved: '0.00',
      incoming: expect.any(String),
    });
    const seen = byService.json().balances[String(recipient.id)];
    expect(BigInt(seen.available.replace('.', '')) + BigInt(seen.incoming.replace('.', ''))).toBe(500n);
    // The very next read, by the recipient: the credit is in amount, settled or not.
    const read = await gateway.app.inject({
      method: 'GET',
      url: `/api/balances/?user_id=${recipient.id}`,
      headers: recipient.header,
    });
    expect(read.json()).toMatchObject({ amount: '5.00', reserved: '0.00' });
    // A user sending a transfer does not see the recipient's balance.
    const byUser = await post('/api/transfer_funds', sender, {
      sender_id: sender.id,
      recipient_id: recipient.id,
      amount: '1.00',
    });
    expect(Object.keys(byUser.json().balances)).toEqual([String(sender.id)]);
  });

  it('keeps Idempotency-Keys apart per caller: the same key from two users is two independent commands', async () => {
    const [alice, bob, carol] = [
      await createUser(db, config),
      await createUser(db, config),
      await createUser(db, config),
    ];
    await post('/api/add_funds', service, { user_id: alice.id, amount: '50.00' });
    await post('/api/add_funds', service, { user_id: bob.id, amount: '50.00' });
    const key = `rent-${randomUUID()}`;
    const fromAlice = await post(
      '/api/transfer_funds',
      alice,
      { sender_id: alice.id, recipient_id: carol.id, amount: '10.00' },
      { 'idempotency-key': key },
    );
    const fromBob = await post(
      '/api/transfer_funds',
      bob,
      { sender_id: bob.id, recipient_id: carol.id, amount: '7.00' },
      { 'idempotency-key': key },
    );
    expect([fromAlice.statusCode, fromBob.statusCode]).toEqual([201, 201]);
    expect([fromAlice.json().command_id, fromBob.json().command_id]).toEqual([key, key]);
    expect(fromBob.json().balances).toEqual({ [String(bob.id)]: { available: '43.00', reserved: '0.00' } });
    // Each polls their own command under the key, and sees only their own.
    const poll = async (caller: TestUser) =>
      (await gateway.app.inject({ method: 'GET', url: `/api/commands/${key}`, headers: caller.header })).json();
    expect((await poll(alice)).sender_transaction).toMatchObject({ user: alice.id, amount: '-10.00' });
    expect((await poll(bob)).sender_transaction).toMatchObject({ user: bob.id, amount: '-7.00' });
    expect(
      (await gateway.app.inject({ method: 'GET', url: `/api/commands/${key}`, headers: carol.header })).statusCode,
    ).toBe(404);
    // The recipient's history names neither sender's key.
    await waitForSettles(db.pool);
    const history = (
      await gateway.app.inject({ method: 'GET', url: `/api/transactions/?user_id=${carol.id}`, headers: carol.header })
    ).json();
    expect(
      history.items.map((t: { command_id: string }) => t.command_id).filter((id: string) => id.includes(key)),
    ).toEqual([]);
  });

  it('answers the same Idempotency-Key and body with the same result and no second effect', async () => {
    const user = await createUser(db, config);
    const key = randomUUID();
    const first = await post(
      '/api/add_funds',
      service,
      { user_id: user.id, amount: '3.00' },
      { 'idempotency-key': key },
    );
    const second = await post('/api/add_funds', service, { user_id: user.id, amount: 3 }, { 'idempotency-key': key });
    expect(first.statusCode).toBe(201);
    expect(second.statusCode).toBe(200);
    expect(second.json().id).toBe(first.json().id);
    const reused = await post(
      '/api/add_funds',
      service,
      { user_id: user.id, amount: '4.00' },
      { 'idempotency-key': key },
    );
    expect(reused.statusCode).toBe(409);
    expect(reused.json().code).toBe('idempotency_key_reused');
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 300n, reserved: 0n, incoming: 0n });
  });

  it('answers 202 with a Location at once when asked to, and only its sender can poll it', async () => {
    const user = await createUser(db, config);
    const response = await post(
      '/api/add_funds',
      service,
      { user_id: user.id, amount: '2.00' },
      { prefer: 'respond-async' },
    );
    expect(response.statusCode).toBe(202);
    const location = response.headers.location as string;
    expect(location).toBe(`/api/commands/${response.json().command_id}`);
    const polled = await eventually(async () => {
      const poll = await gateway.app.inject({ method: 'GET', url: location, headers: service.header });
      return poll.json().status === 'applied' ? poll.json() : undefined;
    });
    // Applied once: a poll is not a repeat, whatever it reads back.
    expect(polled).toMatchObject({ status: 'applied', code: 'ok', amount: '2.00', duplicate: false });
    const key = response.json().command_id as string;
    const resent = await post(
      '/api/add_funds',
      service,
      { user_id: user.id, amount: '2.00' },
      { prefer: 'respond-async', 'idempotency-key': key },
    );
    expect(resent.statusCode).toBe(200);
    expect(resent.json()).toMatchObject({ status: 'applied', duplicate: true });
    expect((await gateway.app.inject({ method: 'GET', url: location, headers: service.header })).json()).toMatchObject({
      duplicate: false,
    });
    // Another service, or the user whose account it is, did not send it: not found under that key.
    const otherService = await createUser(db, config, 'service');
    expect((await gateway.app.inject({ method: 'GET', url: location, headers: otherService.header })).statusCode).toBe(
      404,
    );
    expect((await gateway.app.inject({ method: 'GET', url: location, headers: user.header })).statusCode).toBe(404);
  });

  it('loses none of 200 concurrent deposits to one user', async () => {
    const user = await createUser(db, config);
    const responses = await Promise.all(
      Array.from({ length: 200 }, () => post('/api/add_funds', service, { user_id: user.id, amount: '1.00' })),
    );
    expect(responses.map((r) => r.statusCode).filter((s) => s !== 201)).toEqual([]);
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 20_000n, reserved: 0n, incoming: 0n });
  });

  it('accepts exactly 10 of 60 concurrent 1.00 reserves against 10.00', async () => {
    const user = await createUser(db, config);
    await post('/api/add_funds', service, { user_id: user.id, amount: '10.00' });
    const responses = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        post('/api/reserve_funds', service, { user_id: user.id, service_id: 9, order_id: 1_000 + i, amount: '1.00' }),
      ),
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
