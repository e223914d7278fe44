/**
 * GET /api/balances/?currency=...: the balance converted at the stored rate, exactly, with the
 * rate, its source and its date; 409 rate_unavailable for an unknown currency or a rate older
 * than FX_RATE_AGE_MAX_S, never a stale number.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { commandFingerprint, consumerCommandSchema } from '../../src/commands/schema.ts';
import { parseCbrDaily } from '../../src/fx/cbr.ts';
import { setOperatorRate, storeCbrRates } from '../../src/fx/store.ts';
import { applyCommands } from '../../src/ledger/apply-batch.ts';
import { appWithoutKafka, createUser, type TestUser } from '../helpers/gateway.ts';
import { createTestDatabase, testConfig, type TestDatabase } from '../helpers/stack.ts';

const LIMITS = { amountMinorMax: 100_000_000_000n, balanceMinorMax: 1_000_000_000_000_000n, alertsPerUserMax: 20 };

describe('balances in another currency', () => {
  let db: TestDatabase;
  let config: Config;
  let alice: TestUser;
  let admin: TestUser;

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db, { fx: { rateAgeMaxS: 3_600 } });
    [alice, admin] = await Promise.all([createUser(db, config), createUser(db, config, 'admin')]);
    const schema = consumerCommandSchema();
    const items = [
      { id: 'fx-dep', type: 'deposit', user_id: alice.id, amount: '90.00' },
      { id: 'fx-res', type: 'reserve', user_id: alice.id, service_id: 1, order_id: 1, amount: '12.35' },
    ].map((input) => {
      const command = schema.parse(input);
      return { command, fingerprint: commandFingerprint(command), partition: null, offset: null, principal: 'test' };
    });
    await applyCommands(db.pool, items, LIMITS);
  });
  afterAll(async () => {
    await db?.drop();
  });

  const read = async (query: string, caller: TestUser = alice, cfg: Config = config) => {
    const response = await appWithoutKafka(cfg, db).inject({
      method: 'GET',
      url: `/api/balances/?user_id=${alice.id}${query}`,
      headers: caller.header,
    });
    return { status: response.statusCode, body: response.json() };
  };

  it('converts at an operator rate, half-even to the minor unit, and shows the rate and the roubles', async () => {
    await setOperatorRate(db.pool, 'USD', '0.0108');
    const { status, body } = await read('&currency=USD');
    expect(status).toBe(200);
    expect(body).toMatchObject({
      user_id: alice.id,
      // 77.65 RUB * 0.0108 = 0.83862; 12.35 * 0.0108 = 0.13338
      amount: '0.84',
      reserved: '0.13',
      incoming: '0.00',
      currency: 'USD',
      rate: { units: '0.0108', rub: '1', source: 'operator', date: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) },
      ledger: { amount: '77.65', reserved: '12.35', incoming: '0.00', currency: 'RUB' },
    });
  });

  it("converts at the Central Bank's ratio, with no minor unit for JPY", async () => {
    const today = new Date().toISOString().slice(0, 10).split('-').reverse().join('.');
    await storeCbrRates(
      db.pool,
      parseCbrDaily(
        `<ValCurs Date="${today}"><Valute ID="R01820"><CharCode>JPY</CharCode><Nominal>100</Nominal><Value>50,3412</Value></Valute></ValCurs>`,
      ),
    );
    // A day's rate counts from that day's midnight in Moscow (21:00 UTC the day before).
    const validFrom = await db.pool.query("SELECT valid_from FROM rates WHERE currency = 'JPY'");
    const midnight = new Date(`${new Date().toISOString().slice(0, 10)}T00:00:00+03:00`);
    expect(validFrom.rows).toEqual([{ valid_from: midnight }]);
    // Up to a day old by then: read with a limit of two days.
    const twoDays = testConfig(db, { fx: { rateAgeMaxS: 172_800 } });
    const { status, body } = await read('&currency=JPY', admin, twoDays);
    // 77.65 / 50.3412 * 100 = 154.247...
    expect([status, body.amount, body.reserved, body.rate.source, body.rate.units, body.rate.rub]).toEqual([
      200,
      '154',
      '25',
      'cbr',
      '100',
      '50.3412',
    ]);
  });

  it('answers 409 rate_unavailable for a rate older than FX_RATE_AGE_MAX_S, and for a currency with no rate', async () => {
    await setOperatorRate(db.pool, 'EUR', '0.0099');
    expect((await read('&currency=EUR')).status).toBe(200);
    await db.pool.query("UPDATE rates SET valid_from = now() - interval '3601 seconds' WHERE currency = 'EUR'");
    const stale = await read('&currency=EUR');
    expect([stale.status, stale.body.code, stale.body.details]).toEqual([
      409,
      'rate_unavailable',
      { currency: 'EUR', rate_date: expect.any(String) },
    ]);
    for (const currency of ['GBP', 'XYZ']) {
      const unknown = await read(`&currency=${currency}`);
      expect([currency, unknown.status, unknown.body.code]).toEqual([currency, 409, 'rate_unavailable']);
    }
  });

  it('reads in roubles without a currency or with RUB, and refuses a malformed code or one combined with at', async () => {
    expect((await read('')).body).toMatchObject({ amount: '77.65', currency: 'RUB' });
    expect((await read('&currency=RUB')).body).toMatchObject({ amount: '77.65', currency: 'RUB' });
    expect((await read('')).body).not.toHaveProperty('rate');
    for (const query of [
      '&currency=usd',
      '&currency=US',
      '&currency=%00SD',
      `&currency=USD&at=${new Date().toISOString()}`,
    ]) {
      const refused = await read(query);
      expect([query, refused.status, refused.body.code]).toEqual([query, 400, 'validation_failed']);
    }
  });
});
