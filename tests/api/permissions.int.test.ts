/**
 * The authorization matrix: every endpoint × role × own/other account × bound/unbound service,
 * against expectations written here from the permission model of docs/security.md (not read
 * from the code's table). Without Kafka, a request that passes authorization gets as far as
 * publishing and answers 503; one refused answers 403. Money never moves in this file.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { withOverrides } from '../../src/config.ts';
import { appWithoutKafka, createUser, type TestUser } from '../helpers/gateway.ts';
import { createTestDatabase, reportMonth, testConfig, type TestDatabase } from '../helpers/stack.ts';

type Endpoint =
  | 'add_funds'
  | 'withdraw_funds'
  | 'reserve_funds'
  | 'deduct_funds'
  | 'cancel_reservation'
  | 'refund_funds'
  | 'transfer_funds'
  | 'accounts/freeze'
  | 'accounts/unfreeze';
const ENDPOINTS: readonly Endpoint[] = [
  'add_funds',
  'withdraw_funds',
  'reserve_funds',
  'deduct_funds',
  'cancel_reservation',
  'refund_funds',
  'transfer_funds',
  'accounts/freeze',
  'accounts/unfreeze',
];
const ORDERS: ReadonlySet<Endpoint> = new Set(['reserve_funds', 'deduct_funds', 'cancel_reservation', 'refund_funds']);
/** Fraud and compliance: admins only, never a service or a user. */
const ADMIN_ONLY: ReadonlySet<Endpoint> = new Set(['accounts/freeze', 'accounts/unfreeze']);
/** Never a user's, whatever USER_ACTIONS says. */
const STAFF: ReadonlySet<Endpoint> = new Set(['refund_funds', ...ADMIN_ONLY]);

function body(endpoint: Endpoint, account: number, other: number, serviceId: number) {
  if (endpoint === 'accounts/freeze') return { user_id: account, reason: 'chargeback' };
  if (endpoint === 'accounts/unfreeze') return { user_id: account };
  if (endpoint === 'transfer_funds') return { sender_id: account, recipient_id: other, amount: '1.00' };
  if (endpoint === 'cancel_reservation') return { user_id: account, service_id: serviceId, order_id: 9 };
  if (ORDERS.has(endpoint)) return { user_id: account, service_id: serviceId, order_id: 9, amount: '1.00' };
  return { user_id: account, amount: '1.00' };
}

const ALLOWED = 503;
const REFUSED = 403;

describe('the authorization matrix', () => {
  let db: TestDatabase;
  let config: Config;
  let alice: TestUser;
  let bob: TestUser;
  let shop: TestUser;
  let boundShop: TestUser;
  let admin: TestUser;

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db);
    [alice, bob, shop, boundShop, admin] = await Promise.all([
      createUser(db, config),
      createUser(db, config),
      createUser(db, config, 'service'),
      createUser(db, config, 'service', undefined, [101, 102]),
      createUser(db, config, 'admin'),
    ]);
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function status(
    cfg: Config,
    caller: TestUser,
    endpoint: Endpoint,
    account: number,
    serviceId = 101,
  ): Promise<number> {
    const app = appWithoutKafka(cfg, db);
    const other = account === alice.id ? bob.id : alice.id;
    const response = await app.inject({
      method: 'POST',
      url: `/api/${endpoint}/`,
      headers: { ...caller.header, 'idempotency-key': randomUUID() },
      payload: body(endpoint, account, other, serviceId),
    });
    return response.statusCode;
  }

  it.each(ENDPOINTS)('%s: a user may only transfer out of their own account, by default', async (endpoint) => {
    expect(await status(config, alice, endpoint, alice.id)).toBe(endpoint === 'transfer_funds' ? ALLOWED : REFUSED);
    expect(await status(config, alice, endpoint, bob.id)).toBe(REFUSED);
  });

  it.each(ENDPOINTS)(
    '%s: USER_ACTIONS=deposit,withdraw,reserve,transfer widens a user to those, on their own account only',
    async (endpoint) => {
      const wide = withOverrides(config, { auth: { userActions: ['deposit', 'withdraw', 'reserve', 'transfer'] } });
      const widened = ['add_funds', 'withdraw_funds', 'reserve_funds', 'transfer_funds'].includes(endpoint);
      expect(await status(wide, alice, endpoint, alice.id)).toBe(widened ? ALLOWED : REFUSED);
      expect(await status(wide, alice, endpoint, bob.id)).toBe(REFUSED);
    },
  );

  it.each([...STAFF])("%s: is never a user's, even with every command in USER_ACTIONS", async (endpoint) => {
    const widest = withOverrides(config, {
      auth: { userActions: ['deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer'] },
    });
    expect(await status(widest, alice, endpoint, alice.id)).toBe(REFUSED);
  });

  it.each(ENDPOINTS)(
    '%s: an unbound service acts on any account, for any service (but never freezes)',
    async (endpoint) => {
      const expected = ADMIN_ONLY.has(endpoint) ? REFUSED : ALLOWED;
      expect(await status(config, shop, endpoint, alice.id, 101)).toBe(expected);
      expect(await status(config, shop, endpoint, bob.id, 999)).toBe(expected);
    },
  );

  it.each(ENDPOINTS)(
    '%s: a service bound to 101,102 acts on any account, but on orders of its services only',
    async (endpoint) => {
      expect(await status(config, boundShop, endpoint, alice.id, 102)).toBe(
        ADMIN_ONLY.has(endpoint) ? REFUSED : ALLOWED,
      );
      expect(await status(config, boundShop, endpoint, bob.id, 999)).toBe(
        ORDERS.has(endpoint) || ADMIN_ONLY.has(endpoint) ? REFUSED : ALLOWED,
      );
    },
  );

  it.each(ENDPOINTS)('%s: an admin does everything', async (endpoint) => {
    expect(await status(config, admin, endpoint, bob.id, 999)).toBe(ALLOWED);
  });

  it.each(ENDPOINTS)(
    '%s: a service granted only some actions (npm run users -- --actions) is refused every other one',
    async (endpoint) => {
      const grants: Record<string, Endpoint[]> = {
        deposit: ['add_funds'],
        'reserve,capture,release': ['reserve_funds', 'deduct_funds', 'cancel_reservation'],
        refund: ['refund_funds'],
        // A grant cannot reach past the role: a service granted freeze still may not.
        'freeze,unfreeze': [],
        'withdraw,transfer': ['withdraw_funds', 'transfer_funds'],
      };
      for (const [actions, allowed] of Object.entries(grants)) {
        const granted = await createUser(db, config, 'service', undefined, [101], actions.split(','));
        expect([actions, await status(config, granted, endpoint, alice.id, 101)]).toEqual([
          actions,
          allowed.includes(endpoint) ? ALLOWED : REFUSED,
        ]);
      }
    },
  );

  it('refuses reads to a service granted no read action, and answers them once granted', async () => {
    const app = appWithoutKafka(config, db);
    const depositOnly = await createUser(db, config, 'service', undefined, null, ['deposit']);
    const reader = await createUser(db, config, 'service', undefined, null, [
      'deposit',
      'read_account',
      'read_revenue',
    ]);
    const get = async (caller: TestUser, url: string) =>
      (await app.inject({ method: 'GET', url, headers: caller.header })).statusCode;
    const month = reportMonth(config);
    for (const url of [`/api/balances/?user_id=${alice.id}`, `/api/reports/revenue/?month=${month}`])
      expect([url, await get(depositOnly, url), await get(reader, url)]).toEqual([url, REFUSED, 200]);
    // A command a producer sent on Kafka, for alice: only a caller who may read her account sees it.
    await db.pool.query(
      "INSERT INTO commands (id, fingerprint, type, user_id, status, code) VALUES ('kafka-billing-1', 'f', 'deposit', $1, 'applied', 'ok')",
      [alice.id],
    );
    expect([
      await get(depositOnly, '/api/commands/kafka-billing-1'),
      await get(reader, '/api/commands/kafka-billing-1'),
    ]).toEqual([404, 200]);
  });

  it('lets a user set and remove threshold alerts on their own account only; services and admins on any', async () => {
    const app = appWithoutKafka(config, db);
    const status = async (caller: TestUser, url: string, payload: object) =>
      (
        await app.inject({
          method: 'POST',
          url,
          headers: { ...caller.header, 'idempotency-key': randomUUID() },
          payload,
        })
      ).statusCode;
    const requests = (account: number): Array<[string, object]> => [
      ['/api/balance_alerts/', { user_id: account, below: '10.00' }],
      ['/api/balance_alerts/remove/', { user_id: account, alert_id: 'low-balance' }],
    ];
    for (const [url, payload] of requests(alice.id)) {
      expect([
        await status(alice, url, payload),
        await status(bob, url, payload),
        await status(shop, url, payload),
        await status(boundShop, url, payload),
        await status(admin, url, payload),
      ]).toEqual([ALLOWED, REFUSED, ALLOWED, ALLOWED, ALLOWED]);
    }
  });

  it('lets a user read only their own balance and history; services and admins any', async () => {
    const app = appWithoutKafka(config, db);
    const get = async (caller: TestUser, url: string) =>
      (await app.inject({ method: 'GET', url, headers: caller.header })).statusCode;
    for (const path of ['/api/balances/?user_id=', '/api/transactions/?user_id=', '/api/balance_alerts/?user_id=']) {
      expect([
        await get(alice, `${path}${alice.id}`),
        await get(bob, `${path}${alice.id}`),
        await get(shop, `${path}${alice.id}`),
        await get(boundShop, `${path}${alice.id}`),
        await get(admin, `${path}${alice.id}`),
      ]).toEqual([200, 403, 200, 200, 200]);
    }
  });

  it('shows the revenue report to services (a bound one only its services) and admins, never to users', async () => {
    await db.pool.query(
      "INSERT INTO commands (id, fingerprint, type, user_id, status, code) VALUES ('rev-a', 'f', 'capture', 1, 'applied', 'ok'), ('rev-b', 'f', 'capture', 1, 'applied', 'ok')",
    );
    await db.pool.query(
      "INSERT INTO transactions (id, command_id, user_id, amount, transaction_type, service_id, order_id) VALUES (900001, 'rev-a', 1, -500, 'capture', 101, 1), (900002, 'rev-b', 1, -700, 'capture', 555, 1)",
    );
    const app = appWithoutKafka(config, db);
    const month = reportMonth(config);
    const report = async (caller: TestUser) => {
      const response = await app.inject({
        method: 'GET',
        url: `/api/reports/revenue/?month=${month}`,
        headers: { ...caller.header, accept: 'application/json' },
      });
      return response.statusCode === 200
        ? response.json().services.map((s: { service_id: number }) => s.service_id)
        : response.statusCode;
    };
    expect(await report(alice)).toBe(REFUSED);
    expect(await report(shop)).toEqual([101, 555]);
    expect(await report(boundShop)).toEqual([101]);
    expect(await report(admin)).toEqual([101, 555]);
  });
});
