/**
 * POST /api/commands/bulk through the real gateway, broker and consumer: per-item validation
 * and permissions, one produce for the valid items, per-user order kept, each item applied
 * once however often the bulk is sent, and the batch status URL.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Gateway } from '../../src/api/gateway.ts';
import { pruneBulkBatches } from '../../src/api/routes/bulk.ts';
import { withOverrides, type Config } from '../../src/config.ts';
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
    // The status URL lists the valid items, by their place in the bulk: an invalid one's error was answered, not kept.
    const status = await gateway.app.inject({ method: 'GET', url: answer.json().status_url, headers: shop.header });
    expect(status.json().items.map((i: { index: number; status: string }) => [i.index, i.status])).toEqual([
      [0, 'applied'],
      [2, 'applied'],
      [8, 'rejected'],
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
    expect(status.json().items).toMatchObject([
      { index: 5, status: 'rejected', code: 'idempotency_key_reused' },
      { index: 6, status: 'applied', code: 'ok' },
    ]);
    expect((await balancesOf(db.pool, user.id)).available).toBe(400n);
  });

  it('stores nothing for 2,000 bulks of invalid items from one caller', async () => {
    const caller = await createUser(db, config, 'service');
    const stored = async () =>
      (await db.pool.query('SELECT count(*)::int AS n FROM bulk_batches WHERE principal_user_id = $1', [caller.id]))
        .rows[0].n;
    const junk = Array.from({ length: 50 }, (_, i) => ({ type: 'deposit', idempotency_key: `${uniqueSuffix()}-${i}` }));
    const statuses = new Map<number, number>();
    for (let i = 0; i < 2_000; i += 1) {
      const answer = await bulk(caller, junk);
      statuses.set(answer.statusCode, (statuses.get(answer.statusCode) ?? 0) + 1);
      if (answer.statusCode === 200) expect(answer.json().batch_id).toBeNull();
    }
    // Answered (or refused by the rate limit), never kept.
    expect([...statuses.keys()].filter((code) => code !== 200 && code !== 429)).toEqual([]);
    expect(await stored()).toBe(0);
  });

  it('spends one rate-limit token per valid item', async () => {
    const limited = await startGateway(
      withOverrides(config, { auth: { rateLimitPerS: 1, rateLimitBurst: 1_000 } }),
      db,
      stack.kafka,
    );
    try {
      const caller = await createUser(db, config, 'service');
      const user = await createUser(db, config);
      const run = uniqueSuffix();
      const deposits = (from: number, count: number) =>
        Array.from({ length: count }, (_, i) => ({
          type: 'deposit',
          idempotency_key: `${run}-${from + i}`,
          user_id: user.id,
          amount: '0.01',
        }));
      const send = (commands: unknown[]) =>
        limited.app.inject({
          method: 'POST',
          url: '/api/commands/bulk',
          headers: { ...caller.header, prefer: 'respond-async' },
          payload: { commands },
        });
      // A burst of 1,000 tokens pays for exactly 1,000 valid items, and then nothing is left.
      const thousand = await send(deposits(0, 1_000));
      expect(thousand.statusCode, thousand.body.slice(0, 200)).toBe(202);
      expect(thousand.json().items.filter((i: { status: string }) => i.status !== 'pending')).toEqual([]);
      expect((await send(deposits(1_000, 1))).statusCode).toBe(429);
    } finally {
      await limited.stop();
    }
  });

  it('stores at most BULK_ITEMS_STORED_PER_HOUR_MAX valid items per caller an hour, refusing the bulk past it whole', async () => {
    const capped = await startGateway(
      withOverrides(config, { limits: { bulkItemsStoredPerHourMax: 5 } }),
      db,
      stack.kafka,
    );
    try {
      const caller = await createUser(db, config, 'service');
      const user = await createUser(db, config);
      const run = uniqueSuffix();
      const deposits = (from: number, count: number) =>
        Array.from({ length: count }, (_, i) => ({
          type: 'deposit',
          idempotency_key: `${run}-${from + i}`,
          user_id: user.id,
          amount: '0.01',
        }));
      const send = (commands: unknown[]) =>
        capped.app.inject({ method: 'POST', url: '/api/commands/bulk', headers: caller.header, payload: { commands } });
      expect((await send(deposits(0, 3))).statusCode).toBe(200);
      // 3 stored this hour: 2 more fit under 5, 3 do not; invalid items count for nothing.
      const over = await send([...deposits(10, 3), { type: 'deposit' }]);
      expect([over.statusCode, over.json().code]).toEqual([429, 'bulk_storage_exceeded']);
      expect(Number(over.headers['retry-after'])).toBeGreaterThan(3_000);
      expect((await balancesOf(db.pool, user.id)).available).toBe(3n);
      expect((await send([...deposits(20, 2), { type: 'deposit' }])).statusCode).toBe(200);
      expect((await balancesOf(db.pool, user.id)).available).toBe(5n);
      // Another caller has an hour of its own.
      const other = await createUser(db, config, 'service');
      const theirs = await capped.app.inject({
        method: 'POST',
        url: '/api/commands/bulk',
        headers: other.header,
        payload: { commands: deposits(30, 5) },
      });
      expect(theirs.statusCode).toBe(200);
    } finally {
      await capped.stop();
    }
  });

  it('deletes bulks older than BULK_BATCHES_RETENTION_S, and keeps the rest', async () => {
    const caller = await createUser(db, config, 'service');
    await db.pool.query(
      `INSERT INTO bulk_batches (id, principal_user_id, items, item_count, created_at)
       VALUES (gen_random_uuid(), $1, '[]', 0, now() - interval '2 days'), (gen_random_uuid(), $1, '[]', 0, now())`,
      [caller.id],
    );
    expect(await pruneBulkBatches(db.pool, 86_400)).toBeGreaterThanOrEqual(1);
    const left = await db.pool.query(
      "SELECT count(*)::int AS n FROM bulk_batches WHERE principal_user_id = $1 AND created_at < now() - interval '1 day'",
      [caller.id],
    );
    expect(left.rows[0].n).toBe(0);
    const kept = await db.pool.query('SELECT count(*)::int AS n FROM bulk_batches WHERE principal_user_id = $1', [
      caller.id,
    ]);
    expect(kept.rows[0].n).toBe(1);
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
