import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { applyBatch } from '../../src/ledger/apply-batch.ts';
import { inTransaction } from '../../src/db/pool.ts';
import { commandFingerprint, createCommandSchema, type CommandInput } from '../../src/commands/schema.ts';
import { appWithoutKafka, createUser, type TestUser } from '../helpers/gateway.ts';
import { createTestDatabase, reportMonth, testConfig, type TestDatabase } from '../helpers/stack.ts';
import { ledgerLimitsOf } from '../../src/ledger/core.ts';

describe('reads, authorization and bad input', () => {
  let db: TestDatabase;
  let config: Config;
  let app: ReturnType<typeof appWithoutKafka>;
  let alice: TestUser;
  let bob: TestUser;
  let service: TestUser;
  let admin: TestUser;

  /** Applies commands straight through the ledger, to set up state for reads. */
  async function apply(...inputs: CommandInput[]) {
    const schema = createCommandSchema(config.limits);
    const items = inputs.map((input) => {
      const command = schema.parse(input);
      return { command, fingerprint: commandFingerprint(command), partition: null, offset: null, principal: 'test' };
    });
    return inTransaction(db.pool, (client) => applyBatch(client, items, ledgerLimitsOf(config.limits)));
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db, { limits: { pageItemsMax: 50 } });
    app = appWithoutKafka(config, db);
    [alice, bob, service, admin] = await Promise.all([
      createUser(db, config),
      createUser(db, config),
      createUser(db, config, 'service'),
      createUser(db, config, 'admin'),
    ]);
    await db.pool.query("INSERT INTO services (id, name) VALUES (1, 'Delivery; fast'), (2, 'Music')");
    const deposits = Array.from(
      { length: 25 },
      (_, i): CommandInput => ({
        id: `a-dep-${i}`,
        type: 'deposit',
        user_id: alice.id,
        amount: `${i + 1}.00`,
        comment: `deposit ${i}`,
      }),
    );
    await apply(
      ...deposits,
      { id: 'a-res', type: 'reserve', user_id: alice.id, service_id: 1, order_id: 1, amount: '10.00' },
      { id: 'a-cap', type: 'capture', user_id: alice.id, service_id: 1, order_id: 1, amount: '7.50' },
      { id: 'a-res2', type: 'reserve', user_id: alice.id, service_id: 2, order_id: 2, amount: '3.00' },
      { id: 'a-cap2', type: 'capture', user_id: alice.id, service_id: 2, order_id: 2, amount: '3.00' },
    );
  });
  afterAll(async () => {
    await db?.drop();
  });

  const get = (url: string, user: TestUser, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url, headers: { ...user.header, ...headers } });

  it('reads a balance; a registered user never credited has 0.00; an unknown id is 404', async () => {
    const own = await get(`/api/balances/?user_id=${alice.id}`, alice);
    expect(own.json()).toEqual({
      user_id: alice.id,
      amount: '314.50',
      reserved: '0.00',
      incoming: '0.00',
      currency: 'RUB',
      version: 29, // 25 deposits, 2 reserves, 2 captures: one balance event each
      frozen: false,
    });
    expect((await get(`/api/balances?user_id=${bob.id}`, bob)).json()).toMatchObject({
      amount: '0.00',
      reserved: '0.00',
    });
    expect((await get('/api/balances/?user_id=987654321', admin)).statusCode).toBe(404);
  });

  it('knows an unregistered id by its history, not by a rejected command that named it', async () => {
    await apply(
      { id: 'unknown-withdraw', type: 'withdraw', user_id: 987_654_322, amount: '1.00' },
      { id: 'payer-deposit', type: 'deposit', user_id: 555_000, amount: '5.00' },
      { id: 'payer-transfer', type: 'transfer', user_id: 555_000, recipient_id: 987_654_323, amount: '2.00' },
    );
    expect((await get('/api/balances/?user_id=987654322', admin)).statusCode).toBe(404);
    // Applied straight through the ledger, so no consumer published the settle: still incoming,
    // and already counted in amount (what the next command of the recipient may spend).
    expect((await get('/api/balances/?user_id=987654323', admin)).json()).toEqual({
      user_id: 987_654_323,
      amount: '2.00',
      reserved: '0.00',
      incoming: '2.00',
      currency: 'RUB',
      version: 0, // a credit to incoming is the sender's event; the recipient's comes with the settle
      frozen: false,
    });
  });

  it('pages through history by date and by amount with keyset cursors, without gaps or repeats', async () => {
    for (const [sort, order] of [
      ['date', 'desc'],
      ['date', 'asc'],
      ['amount', 'asc'],
      ['amount', 'desc'],
    ] as const) {
      const seen: Array<{ id: number; amount: string }> = [];
      let cursor: string | null = null;
      let pages = 0;
      do {
        const url: string = `/api/transactions/?user_id=${alice.id}&sort=${sort}&order=${order}&limit=7${cursor ? `&cursor=${cursor}` : ''}`;
        const page: { items: Array<{ id: number; amount: string }>; next_cursor: string | null } = (
          await get(url, alice)
        ).json();
        seen.push(...page.items);
        cursor = page.next_cursor;
        pages += 1;
      } while (cursor && pages < 20);
      expect(seen).toHaveLength(30);
      expect(new Set(seen.map((t) => t.id)).size).toBe(30);
      if (sort === 'amount') {
        const amounts = seen.map((t) => Number(t.amount));
        expect(amounts).toEqual([...amounts].sort((x, y) => (order === 'asc' ? x - y : y - x)));
      }
    }
  });

  it('caps the page size and refuses a forged cursor', async () => {
    expect((await get(`/api/transactions/?user_id=${alice.id}&limit=51`, alice)).statusCode).toBe(400);
    const forged = await get(`/api/transactions/?user_id=${alice.id}&cursor=bm90LWEtY3Vyc29y`, alice);
    expect(forged.statusCode).toBe(400);
    expect(forged.json().details[0].field).toBe('cursor');
  });

  it('gives the monthly revenue report as CSV with a filename, or as JSON', async () => {
    const month = reportMonth(config);
    const csv = await get(`/api/reports/revenue/?month=${month}`, service);
    expect(csv.statusCode).toBe(200);
    expect(csv.headers['content-disposition']).toBe(`attachment; filename="revenue-${month}.csv"`);
    expect(csv.body).toBe(
      `service_id;service_name;revenue;captured;refunded\r\n1;"Delivery; fast";7.50;7.50;0.00\r\n2;Music;3.00;3.00;0.00\r\n`,
    );
    const json = await get(`/api/reports/revenue/?month=${month}`, admin, { accept: 'application/json' });
    expect(json.json()).toEqual({
      month,
      services: [
        { service_id: 1, service_name: 'Delivery; fast', revenue: '7.50', captured: '7.50', refunded: '0.00' },
        { service_id: 2, service_name: 'Music', revenue: '3.00', captured: '3.00', refunded: '0.00' },
      ],
    });
    expect((await get('/api/reports/revenue/?month=1999-01', admin)).body).toBe(
      'service_id;service_name;revenue;captured;refunded\r\n',
    );
    expect((await get(`/api/reports/revenue/?month=2026-13`, admin)).statusCode).toBe(400);
  });

  it("counts revenue in the month of REPORT_TIME_ZONE, whose midnight is not UTC's", async () => {
    await apply(
      { id: 'tz-dep', type: 'deposit', user_id: bob.id, amount: '5.00' },
      { id: 'tz-res', type: 'reserve', user_id: bob.id, service_id: 2, order_id: 77, amount: '1.00' },
      { id: 'tz-cap', type: 'capture', user_id: bob.id, service_id: 2, order_id: 77, amount: '1.00' },
    );
    // 00:30 on the 1st of March in Moscow is still February in UTC.
    await db.pool.query("UPDATE transactions SET created_at = '2026-02-28T21:30:00Z' WHERE command_id = 'tz-cap'");
    const report = async (appOf: typeof app, month: string) =>
      (
        await appOf.inject({
          method: 'GET',
          url: `/api/reports/revenue/?month=${month}`,
          headers: { ...admin.header, accept: 'application/json' },
        })
      ).json().services;
    const music = [{ service_id: 2, service_name: 'Music', revenue: '1.00', captured: '1.00', refunded: '0.00' }];
    expect([await report(app, '2026-02'), await report(app, '2026-03')]).toEqual([[], music]);
    const utc = appWithoutKafka(testConfig(db, { reports: { timeZone: 'UTC' } }), db);
    expect([await report(utc, '2026-02'), await report(utc, '2026-03')]).toEqual([music, []]);
  });
});
