/**
 * GET /api/balances/?user_id=N&at=<instant>: the balances as of a past instant.
 * The property: a random stream of every command type is applied chunk by chunk; at random
 * moments between chunks the test records the database's clock and every user's balances. Asked
 * afterwards for each recorded instant, the endpoint must answer exactly what was recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { appWithoutKafka, createUser, type TestUser } from '../helpers/gateway.ts';
import { balancesWithStamp, chunkApplier, runRandomStream, UTC_MICROS_SQL } from '../helpers/random-stream.ts';
import { createTestDatabase, testConfig, type TestDatabase } from '../helpers/stack.ts';

interface Sample {
  readonly at: string;
  readonly balances: ReadonlyMap<number, { amount: string; reserved: string; incoming: string }>;
  readonly versions: ReadonlyMap<number, number>;
}

describe('balances at a point in time', () => {
  let db: TestDatabase;
  let config: Config;
  let app: ReturnType<typeof appWithoutKafka>;
  let admin: TestUser;
  let alice: TestUser;
  let bob: TestUser;
  let applyChunk: ReturnType<typeof chunkApplier>;

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db);
    app = appWithoutKafka(config, db);
    applyChunk = chunkApplier(db, config);
    [admin, alice, bob] = await Promise.all([
      createUser(db, config, 'admin'),
      createUser(db, config),
      createUser(db, config),
    ]);
  });
  afterAll(async () => {
    await db?.drop();
  });

  const get = (url: string, user: TestUser) => app.inject({ method: 'GET', url, headers: user.header });

  /** The database's clock now (the one that stamps postings) and every user's balances. */
  async function sample(users: readonly number[]): Promise<Sample> {
    const { stamp, balances, versions } = await balancesWithStamp(db, users, UTC_MICROS_SQL('clock_timestamp()'));
    return { at: stamp!, balances, versions };
  }

  it('answers, for every instant recorded during a random stream, the balances recorded then', async () => {
    const users = [alice.id, bob.id, (await createUser(db, config)).id];
    const samples: Sample[] = [await sample(users)];
    await runRandomStream({
      users,
      steps: 120,
      seed: 20261128,
      prefix: 'pit',
      applyChunk,
      afterChunk: async (hint) => {
        if (hint) samples.push(await sample(users));
      },
    });
    expect(samples.length).toBeGreaterThan(20);
    // Some recorded instants must have had money in flight, or incoming was never tested.
    expect(samples.some((s) => [...s.balances.values()].some((b) => b.incoming !== '0.00'))).toBe(true);
    expect(await verifyLedger(db.pool)).toEqual([]);

    for (const recorded of samples) {
      for (const user of users) {
        const response = await get(`/api/balances/?user_id=${user}&at=${encodeURIComponent(recorded.at)}`, admin);
        expect(response.statusCode, response.body).toBe(200);
        expect(response.json(), `user ${user} at ${recorded.at}`).toEqual({
          user_id: user,
          at: recorded.at,
          ...recorded.balances.get(user),
          currency: 'RUB',
          version: recorded.versions.get(user),
        });
      }
    }
  });

  it('stamps postings with the microseconds of the chunk, not a millisecond that could fall before an instant read', async () => {
    const dave = await createUser(db, config);
    for (let i = 0; i < 5; i += 1)
      await applyChunk([{ id: `dave-${i}`, type: 'deposit', user_id: dave.id, amount: '1.00' }]);
    const { rows } = await db.pool.query<{ cut: number }>(
      `SELECT count(*)::int AS cut FROM postings p JOIN commands c ON c.id = p.command_id
       WHERE c.id LIKE 'dave-%' AND p.created_at = date_trunc('milliseconds', p.created_at)`,
    );
    // Five stamps cut to the millisecond by chance: one in 10^15.
    expect(rows[0]!.cut).toBeLessThan(5);
  });

  it('answers the version of the last change, also of one that moved only reserved money (an exact capture)', async () => {
    const erin = await createUser(db, config);
    const order = { user_id: erin.id, service_id: 7, order_id: 1 };
    await applyChunk([{ id: 'erin-dep', type: 'deposit', user_id: erin.id, amount: '10.00' }]);
    await applyChunk([{ id: 'erin-res', type: 'reserve', ...order, amount: '4.00' }]);
    await applyChunk([{ id: 'erin-cap', type: 'capture', ...order, amount: '4.00' }]);
    // The database's clock, which stamped the postings: after the capture, whatever the JS clock says.
    const { rows } = await db.pool.query<{ at: string }>(`SELECT ${UTC_MICROS_SQL('clock_timestamp()')} AS at`);
    const at = encodeURIComponent(rows[0]!.at);
    const answer = (await get(`/api/balances/?user_id=${erin.id}&at=${at}`, erin)).json();
    expect(answer).toMatchObject({ amount: '6.00', reserved: '0.00', version: 3 });
  });

  it('gives zeros before the first posting, and the same instant in any offset', async () => {
    const carol = await createUser(db, config);
    await applyChunk([{ id: 'carol-dep', type: 'deposit', user_id: carol.id, amount: '5.00' }]);
    const before = await get(`/api/balances/?user_id=${carol.id}&at=2000-01-01T00:00:00Z`, carol);
    expect(before.json()).toEqual({
      user_id: carol.id,
      at: '2000-01-01T00:00:00.000000Z',
      amount: '0.00',
      reserved: '0.00',
      incoming: '0.00',
      currency: 'RUB',
      version: 0,
    });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const now = new Date(Date.now() - 1).toISOString();
    const utc = (await get(`/api/balances/?user_id=${carol.id}&at=${now}`, carol)).json();
    expect(utc.amount).toBe('5.00');
    const moscow = new Date(Date.parse(now) + 3 * 3_600_000).toISOString().replace('Z', '+03:00');
    expect((await get(`/api/balances/?user_id=${carol.id}&at=${encodeURIComponent(moscow)}`, carol)).json()).toEqual(
      utc,
    );
  });

  it.each([
    ['2026-02-30T00:00:00Z'],
    ['2026-11-28'],
    ['2026-11-28T10:00:00'],
    ['2026-11-28T10:00:00.1234567Z'],
    ['yesterday'],
    ["2026-11-28T10:00:00Z'; DROP TABLE postings; --"],
    ['x'.repeat(200)],
  ])('400 for at=%s', async (at) => {
    const response = await get(`/api/balances/?user_id=${alice.id}&at=${encodeURIComponent(at)}`, alice);
    expect(response.statusCode, response.body).toBe(400);
    expect(response.json().details.map((d: { field: string }) => d.field)).toContain('at');
  });

  it('400 for an instant in the future', async () => {
    const future = new Date(Date.now() + 60_000).toISOString();
    const response = await get(`/api/balances/?user_id=${alice.id}&at=${future}`, alice);
    expect(response.statusCode).toBe(400);
    expect(response.json().details).toEqual([{ field: 'at', message: 'must not be in the future' }]);
  });

  it("keeps the balance's ownership rules: another user's is 403, an unknown id 404", async () => {
    const at = new Date(Date.now() - 1_000).toISOString();
    expect((await get(`/api/balances/?user_id=${bob.id}&at=${at}`, alice)).statusCode).toBe(403);
    expect((await get(`/api/balances/?user_id=${alice.id}&at=${at}`, alice)).statusCode).toBe(200);
    expect((await get(`/api/balances/?user_id=987654399&at=${at}`, admin)).statusCode).toBe(404);
  });
});
