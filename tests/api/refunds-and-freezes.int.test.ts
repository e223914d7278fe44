/**
 * Refunds and frozen accounts through the real stack: the gateway, the broker, the consumer and
 * PostgreSQL. Over HTTP for the callers the permission table names, and on Kafka for producers,
 * with a bad command on the same partition followed by a canary that must still apply.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/api/gateway.ts';
import type { Config } from '../../src/config.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { balancesOf, collectReplies, publish, type ReplyCollector } from '../helpers/commands.ts';
import { createUser, startGateway, type TestUser } from '../helpers/gateway.ts';
import { reportMonth, startStack, uniqueSuffix, type RunningStack, type TestDatabase } from '../helpers/stack.ts';

describe('refunds and frozen accounts through the real stack', () => {
  let stack: RunningStack;
  let db: TestDatabase;
  let config: Config;
  let gateway: Gateway;
  let service: TestUser;
  let otherService: TestUser;
  let admin: TestUser;
  let replies: ReplyCollector;

  beforeAll(async () => {
    stack = await startStack({ limits: { replyWaitMs: 15_000 } });
    ({ db, config } = stack);
    gateway = await startGateway(config, db, stack.kafka);
    [service, otherService, admin] = await Promise.all([
      createUser(db, config, 'service', undefined, [41]),
      createUser(db, config, 'service', undefined, [42]),
      createUser(db, config, 'admin'),
    ]);
    replies = await collectReplies(stack.kafka, config.topics.replies);
  });
  afterAll(async () => {
    await replies?.stop();
    await gateway?.stop();
    await stack?.stop();
  });

  const post = (url: string, caller: TestUser, payload: object) =>
    gateway.app.inject({
      method: 'POST',
      url,
      headers: { ...caller.header, 'idempotency-key': randomUUID() },
      payload,
    });
  const get = (url: string, caller: TestUser) =>
    gateway.app.inject({ method: 'GET', url, headers: { ...caller.header, accept: 'application/json' } });

  /** A user with 100.00, order 7 of service 41 reserved for 50.00 and captured for 40.00. */
  async function customerWithCapture(): Promise<{ user: TestUser; order: object }> {
    const user = await createUser(db, config);
    const order = { user_id: user.id, service_id: 41, order_id: 7 };
    expect((await post('/api/add_funds/', service, { user_id: user.id, amount: '100.00' })).statusCode).toBe(201);
    expect((await post('/api/reserve_funds/', service, { ...order, amount: '50.00' })).statusCode).toBe(201);
    expect((await post('/api/deduct_funds/', service, { ...order, amount: '40.00' })).statusCode).toBe(201);
    return { user, order };
  }

  it('refunds part of a captured order, refuses more than was captured, and shows the refund in history and the report', async () => {
    const { user, order } = await customerWithCapture();
    const refund = await post('/api/refund_funds/', service, { ...order, amount: '15.00', comment: 'damaged' });
    expect(refund.statusCode, refund.body).toBe(201);
    expect(refund.json()).toMatchObject({
      transaction_type: 'refund',
      amount: '15.00',
      service_id: 41,
      order_id: 7,
      comment: 'damaged',
      balances: { [String(user.id)]: { available: '75.00', reserved: '0.00' } },
    });
    const tooMuch = await post('/api/refund_funds/', service, { ...order, amount: '25.01' });
    expect([tooMuch.statusCode, tooMuch.json().code]).toEqual([409, 'refund_exceeds_capture']);
    const notCaptured = await post('/api/refund_funds/', service, { ...order, order_id: 8, amount: '1.00' });
    expect([notCaptured.statusCode, notCaptured.json().code]).toEqual([409, 'order_not_captured']);
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 7500n, reserved: 0n, incoming: 0n });
    // The rest of the capture, to the cent, is still refundable.
    expect((await post('/api/refund_funds/', service, { ...order, amount: '25.00' })).statusCode).toBe(201);
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 10000n, reserved: 0n, incoming: 0n });

    const history = (await get(`/api/transactions/?user_id=${user.id}&sort=date&order=asc`, user)).json();
    expect(
      history.items.map((t: { transaction_type: string; amount: string }) => [t.transaction_type, t.amount]),
    ).toEqual([
      ['deposit', '100.00'],
      ['reserve', '-50.00'],
      ['capture', '-40.00'],
      ['release', '10.00'],
      ['refund', '15.00'],
      ['refund', '25.00'],
    ]);
    const report = (await get(`/api/reports/revenue/?month=${reportMonth(config)}`, service)).json();
    expect(report.services).toEqual([
      expect.objectContaining({ service_id: 41, revenue: '0.00', captured: '40.00', refunded: '40.00' }),
    ]);
    const events = await db.pool.query<{ payload: string }>(
      'SELECT payload FROM balance_events WHERE user_id = $1 AND part = 0 ORDER BY sequence',
      [user.id],
    );
    expect(events.rows.map((e) => JSON.parse(e.payload).type)).toEqual([
      'deposit',
      'reserve',
      'capture',
      'refund',
      'refund',
    ]);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('keeps an earlier capture refundable after the order id is reserved again, and refunds across both captures', async () => {
    const { user, order } = await customerWithCapture();
    // The same order id reserved again: the 40.00 captured before stays refundable meanwhile.
    expect((await post('/api/reserve_funds/', service, { ...order, amount: '20.00' })).statusCode).toBe(201);
    const whileOpen = await post('/api/refund_funds/', service, { ...order, amount: '30.00' });
    expect(whileOpen.statusCode, whileOpen.body).toBe(201);
    expect((await post('/api/deduct_funds/', service, { ...order, amount: '20.00' })).statusCode).toBe(201);
    // Captured 40.00 and 20.00, refunded 30.00: 30.00 is left, not a cent more.
    const tooMuch = await post('/api/refund_funds/', service, { ...order, amount: '30.01' });
    expect([tooMuch.statusCode, tooMuch.json().code]).toEqual([409, 'refund_exceeds_capture']);
    expect((await post('/api/refund_funds/', service, { ...order, amount: '30.00' })).statusCode).toBe(201);
    // Recorded on the captures oldest first, each within its own capture.
    const { rows } = await db.pool.query(
      'SELECT captured_amount::int AS captured, refunded_amount::int AS refunded FROM reservations WHERE user_id = $1 ORDER BY id',
      [user.id],
    );
    expect(rows).toEqual([
      { captured: 4000, refunded: 4000 },
      { captured: 2000, refunded: 2000 },
    ]);
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 10000n, reserved: 0n, incoming: 0n });
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('refuses a refund to a user and to a service bound to other services, and moves nothing', async () => {
    const { user, order } = await customerWithCapture();
    expect((await post('/api/refund_funds/', user, { ...order, amount: '1.00' })).statusCode).toBe(403);
    expect((await post('/api/refund_funds/', otherService, { ...order, amount: '1.00' })).statusCode).toBe(403);
    expect((await post('/api/refund_funds/', admin, { ...order, amount: '1.00' })).statusCode).toBe(201);
    // 100.00, less the 50.00 hold, plus its 10.00 remainder, plus the admin's refund.
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 6100n, reserved: 0n, incoming: 0n });
  });

  it('freezes an account: money cannot leave it but can arrive, until an admin unfreezes it', async () => {
    const { user, order } = await customerWithCapture();
    const recipient = await createUser(db, config);
    expect((await post('/api/accounts/freeze/', service, { user_id: user.id, reason: 'x' })).statusCode).toBe(403);
    const freeze = await post('/api/accounts/freeze/', admin, { user_id: user.id, reason: 'chargeback 2211' });
    expect([freeze.statusCode, freeze.json().status], freeze.body).toEqual([201, 'applied']);
    const again = await post('/api/accounts/freeze/', admin, { user_id: user.id, reason: 'twice' });
    expect([again.statusCode, again.json().code]).toEqual([409, 'account_already_frozen']);

    const stopped = [
      await post('/api/withdraw_funds/', service, { user_id: user.id, amount: '1.00' }),
      await post('/api/transfer_funds/', user, { sender_id: user.id, recipient_id: recipient.id, amount: '1.00' }),
      await post('/api/reserve_funds/', service, { ...order, order_id: 9, amount: '1.00' }),
    ];
    expect(stopped.map((r) => [r.statusCode, r.json().code])).toEqual([
      [409, 'account_frozen'],
      [409, 'account_frozen'],
      [409, 'account_frozen'],
    ]);
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 6000n, reserved: 0n, incoming: 0n });
    const arriving = [
      await post('/api/add_funds/', service, { user_id: user.id, amount: '5.00' }),
      await post('/api/refund_funds/', service, { ...order, amount: '5.00' }),
    ];
    expect(arriving.map((r) => r.statusCode)).toEqual([201, 201]);
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 7000n, reserved: 0n, incoming: 0n });

    const asAdmin = (await get(`/api/balances/?user_id=${user.id}`, admin)).json();
    const asUser = (await get(`/api/balances/?user_id=${user.id}`, user)).json();
    expect(asAdmin).toMatchObject({ frozen: true, frozen_reason: 'chargeback 2211', amount: '70.00' });
    expect(asUser).toMatchObject({ frozen: true, amount: '70.00' });
    expect(asUser).not.toHaveProperty('frozen_reason');

    expect((await post('/api/accounts/unfreeze/', admin, { user_id: user.id, reason: 'cleared' })).statusCode).toBe(
      201,
    );
    expect((await post('/api/withdraw_funds/', service, { user_id: user.id, amount: '1.00' })).statusCode).toBe(201);
    expect((await get(`/api/balances/?user_id=${user.id}`, admin)).json()).toMatchObject({
      frozen: false,
      amount: '69.00',
    });
    const audit = await db.pool.query(
      'SELECT frozen, reason, principal FROM account_freezes WHERE user_id = $1 ORDER BY id',
      [user.id],
    );
    expect(audit.rows).toEqual([
      { frozen: true, reason: 'chargeback 2211', principal: `admin:${admin.id}` },
      { frozen: false, reason: 'cleared', principal: `admin:${admin.id}` },
    ]);
    const events = await db.pool.query<{ payload: string }>(
      'SELECT payload FROM balance_events WHERE user_id = $1 AND part = 0 ORDER BY sequence',
      [user.id],
    );
    expect(events.rows.map((e) => JSON.parse(e.payload).type)).toEqual([
      'deposit',
      'reserve',
      'capture',
      'freeze',
      'deposit',
      'refund',
      'unfreeze',
      'withdraw',
    ]);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('takes refunds and freezes on Kafka; a malformed one is refused and the canary behind it on the partition applies', async () => {
    const user = 900_000 + Math.floor(Math.random() * 90_000);
    const run = uniqueSuffix();
    const id = (step: string) => `kafka-market-${run}-${step}`;
    const order = { user_id: user, service_id: 43, order_id: 1 };
    await publish(stack.kafka, config.topics.commands, [
      { id: id('dep'), type: 'deposit', user_id: user, amount: '10.00' },
      { id: id('res'), type: 'reserve', ...order, amount: '10.00' },
      { id: id('cap'), type: 'capture', ...order, amount: '10.00' },
      { raw: JSON.stringify({ id: id('bad-1'), type: 'refund', ...order, amount: '-1.00' }), key: String(user) },
      {
        raw: JSON.stringify({ id: id('bad-2'), type: 'freeze', user_id: user, reason: 'nul\u0000' }),
        key: String(user),
      },
      { raw: JSON.stringify({ id: id('bad-3'), type: 'freeze', user_id: user }), key: String(user) },
      { id: id('ref'), type: 'refund', ...order, amount: '10.01' },
      { id: id('frz'), type: 'freeze', user_id: user, reason: 'sanctions screening' },
      { id: id('wd'), type: 'withdraw', user_id: user, amount: '0.01' },
      { id: id('canary'), type: 'refund', ...order, amount: '10.00' },
    ]);
    const got = await replies.waitFor([id('ref'), id('frz'), id('wd'), id('canary')], 60_000);
    expect([id('ref'), id('frz'), id('wd'), id('canary')].map((key) => got.get(key)!.code)).toEqual([
      'refund_exceeds_capture',
      'ok',
      'account_frozen',
      'ok',
    ]);
    const refused = await replies.waitFor([id('bad-1'), id('bad-2'), id('bad-3')], 60_000);
    expect([...refused.values()].map((r) => r.code)).toEqual(['invalid_command', 'invalid_command', 'invalid_command']);
    expect(await balancesOf(db.pool, user)).toEqual({ available: 1000n, reserved: 0n, incoming: 0n });
    const frozen = await db.pool.query(
      "SELECT frozen_reason, (SELECT principal FROM account_freezes WHERE user_id = $1) AS principal FROM accounts WHERE kind = 'user_available' AND owner_id = $1",
      [user],
    );
    expect(frozen.rows).toEqual([{ frozen_reason: 'sanctions screening', principal: 'unauthenticated' }]);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });
});
