/**
 * POST /api/commands/bulk through the real gateway, broker and consumer: per-item validation
 * and permissions, one produce for the valid items, per-user order kept, each item applied
 * once however often the bulk is sent, and the batch status URL.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Gateway } from '../../src/api/gateway.ts';
import type { Config } from '../../src/config.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { balancesOf } from '../helpers/commands.ts';
import { createUser, startGateway, type TestUser } from '../helpers/gateway.ts';
import { eventually, startStack, uniqueSuffix, type RunningStack, type TestDatabase } from '../helpers/stack.ts';

describe('bulk commands through the real stack', () => {
  let stack: RunningStack;
  let db: TestDatabase;
  let config: Config;
  let gateway: Gateway;
  let billing: TestUser;
  let shop: TestUser;

  beforeAll(async () => {
    stack = await startStack({ limits: { replyWaitMs: 15_000, bulkCommandsMax: 1_000 } });
    ({ db, config } = stack);
    gateway = await startGateway(config, db, stack.kafka);
    billing = await createUser(db, config, 'service');
    shop = await createUser(db, config, 'service', undefined, [101]);
  });
  afterAll(async () => {
    await gateway?.stop();
    await stack?.stop();
  });

  const bulk = (caller: TestUser, commands: unknown[], headers: Record<string, string> = {}) =>
    gateway.app.inject({
      method: 'POST',
      url: '/api/commands/bulk',
      headers: { ...caller.header, ...headers },
      payload: { commands },
    });

  it("applies the valid items, answers each bad one with its own error, and keeps one user's order", async () => {
    const user = await createUser(db, config);
    const run = uniqueSuffix();
    const answer = await bulk(shop, [
      { type: 'deposit', idempotency_key: `${run}-1`, user_id: user.id, amount: '10.00' },
      { type: 'deposit', idempotency_key: `${run}-2`, user_id: user.id, amount: '-1.00' },
      { type: 'withdraw', idempotency_key: `${run}-3`, user_id: user.id, amount: '4.00' },
      { type: 'reserve', idempotency_key: `${run}-4`, user_id: user.id, service_id: 202, order_id: 1, amount: '1.00' },
      { type: 'freeze', idempotency_key: `${run}-5`, user_id: user.id, reason: 'x' },
      { type: 'teleport', idempotency_key: `${run}-6`, user_id: user.id },
      { type: 'deposit', idempotency_key: `${run}-1`, user_id: user.id, amount: '1.00' },
      { type: 'deposit', user_id: user.id, amount: '1.00' },
      // Ordered after the deposit on the user's partition: 10.00 - 4.00 leaves 6.00, so 6.01 fails.
      { type: 'withdraw', idempotency_key: `${run}-9`, user_id: user.id, amount: '6.01' },
    ]);
    expect(answer.statusCode, answer.body).toBe(200);
    const items = answer.json().items;
    expect(
      items.map((i: { status: string; error?: { code: string; status: number }; code?: string }) => [
        i.status,
        i.error?.status ?? null,
        i.error?.code ?? i.code ?? null,
      ]),
    ).toEqual([
      ['applied', null, null],
      ['invalid', 400, 'validation_failed'],
      ['applied', null, null],
      ['invalid', 403, 'forbidden'],
      ['invalid', 403, 'forbidden'],
      ['invalid', 400, 'validation_failed'],
      ['invalid', 400, 'validation_failed'],
      ['invalid', 400, 'validation_failed'],
      ['rejected', null, 'insufficient_funds'],
    ]);
    expect(items[0]).toMatchObject({ duplicate: false, transaction_ids: [expect.any(Number)] });
    const full = await gateway.app.inject({ method: 'GET', url: `/api/commands/${run}-1`, headers: shop.header });
    expect(full.json()).toMatchObject({ transaction_type: 'deposit', amount: '10.00', command_id: `${run}-1` });
    expect(await balancesOf(db.pool, user.id)).toEqual({ available: 600n, reserved: 0n, incoming: 0n });
    const status = await gateway.app.inject({ method: 'GET', url: answer.json().status_url, headers: shop.header });
    expect(status.json().items.map((i: { status: string }) => i.status)).toEqual([
      'applied',
      'invalid',
      'applied',
      'invalid',
      'invalid',
      'invalid',
      'invalid',
      'invalid',
      'rejected',
    ]);
    // Another caller's batch is not theirs to see.
    const other = await gateway.app.inject({ method: 'GET', url: answer.json().status_url, headers: billing.header });
    expect(other.statusCode).toBe(404);
  });

  it('publishes 1,000 deposits over 100 users in one produce, and sending the bulk again applies nothing twice', async () => {
    const users = await Promise.all(Array.from({ length: 100 }, () => createUser(db, config)));
    const run = uniqueSuffix();
    const commands = Array.from({ length: 1_000 }, (_, i) => ({
      type: 'deposit',
      idempotency_key: `${run}-${i}`,
      user_id: users[i % 100]!.id,
      amount: '1.00',
    }));
    // The gateway's own producer: every send of it is one produce request (one in flight, never split).
    const producer = (gateway.client as unknown as { producer: { send: (...args: unknown[]) => unknown } }).producer;
    const sends = vi.spyOn(producer, 'send');
    const first = await bulk(billing, commands, { prefer: 'respond-async' });
    expect(first.statusCode).toBe(202);
    expect(sends.mock.calls.map((call) => (call[0] as { messages: unknown[] }).messages.length)).toEqual([1_000]);
    sends.mockRestore();
    expect(first.headers.location).toBe(first.json().status_url);
    const again = await bulk(billing, commands);
    expect(again.statusCode, again.body.slice(0, 200)).toBe(200);
    const statuses = again.json().items.map((i: { status: string; duplicate?: boolean }) => i.status);
    expect(statuses.filter((s: string) => s !== 'applied')).toEqual([]);
    // Whether an item says duplicate depends on which copy's reply reached the waiting gateway
    // first (the first copy may still be in flight); what counts is the effect, checked below.
    await eventually(
      async () => {
        const status = await gateway.app.inject({
          method: 'GET',
          url: first.json().status_url,
          headers: billing.header,
        });
        return status.json().items.every((i: { status: string }) => i.status === 'applied') ? true : undefined;
      },
      30_000,
      'the first bulk decided',
    );
    // Ten deposits of 1.00 each, once: a second application shows as 20.00.
    for (const user of users.slice(0, 3)) expect((await balancesOf(db.pool, user.id)).available).toBe(1_000n);
    const applied = await db.pool.query<{ n: number; postings: number }>(
      'SELECT count(*)::int AS n, (SELECT count(*)::int FROM postings WHERE command_id LIKE $1) AS postings FROM commands WHERE id LIKE $1',
      [`~http:${billing.id}:${run}-%`],
    );
    expect(applied.rows[0]).toEqual({ n: 1_000, postings: 1_000 });
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('answers odd items and unstorable keys item by item, and a status URL tells a reused key from the command it names', async () => {
    const user = await createUser(db, config);
    const run = uniqueSuffix();
    const first = await bulk(shop, [
      { type: 'deposit', idempotency_key: `${run}-a`, user_id: user.id, amount: '1.00' },
    ]);
    expect(first.statusCode).toBe(200);
    const answer = await bulk(shop, [
      null,
      [1, 2],
      7,
      { type: 'deposit', idempotency_key: 'nul\u0000key', user_id: user.id, amount: '1.00' },
      { type: 'deposit', idempotency_key: 'lone\ud800', user_id: user.id, amount: '1.00' },
      // The same key as before with another amount: refused by the consumer as a reused key.
      { type: 'deposit', idempotency_key: `${run}-a`, user_id: user.id, amount: '2.00' },
      { type: 'deposit', idempotency_key: `${run}-canary`, user_id: user.id, amount: '3.00' },
    ]);
    expect(answer.statusCode, answer.body.slice(0, 300)).toBe(200);
    const items = answer.json().items;
    expect(items.map((i: { status: string; idempotency_key: string | null }) => [i.status, i.idempotency_key])).toEqual(
      [
        ['invalid', null],
        ['invalid', null],
        ['invalid', null],
        ['invalid', null],
        ['invalid', null],
        ['rejected', `${run}-a`],
        ['applied', `${run}-canary`],
      ],
    );
    const status = await gateway.app.inject({ method: 'GET', url: answer.json().status_url, headers: shop.header });
    expect(status.json().items.slice(5)).toMatchObject([
      { status: 'rejected', code: 'idempotency_key_reused' },
      { status: 'applied', code: 'ok' },
    ]);
    expect((await balancesOf(db.pool, user.id)).available).toBe(400n);
  });

  it('refuses an empty bulk and one over BULK_COMMANDS_MAX, moving nothing', async () => {
    expect((await bulk(billing, [])).statusCode).toBe(400);
    const tooMany = Array.from({ length: 1_001 }, (_, i) => ({
      type: 'deposit',
      idempotency_key: `x-${i}`,
      user_id: 1,
      amount: '1.00',
    }));
    expect((await bulk(billing, tooMany)).statusCode).toBe(400);
  });
});
