/**
 * GET /api/balances/?user_id=N&at=<instant>: the balances as of a past instant.
 * The property: a random stream of every command type is applied chunk by chunk; at random
 * moments between chunks the test records the database's clock and every user's balances. Asked
 * afterwards for each recorded instant, the endpoint must answer exactly what was recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { Config } from '../../src/config.ts';
import { applyCommands } from '../../src/ledger/apply-batch.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { formatMinor } from '../../src/commands/money.ts';
import { commandFingerprint, createCommandSchema, type CommandInput } from '../../src/commands/schema.ts';
import { appWithoutKafka, createUser, type TestUser } from '../helpers/gateway.ts';
import { createTestDatabase, testConfig, type TestDatabase } from '../helpers/stack.ts';

interface Sample {
  readonly at: string;
  readonly balances: ReadonlyMap<number, { amount: string; reserved: string; incoming: string }>;
}

describe('balances at a point in time', () => {
  let db: TestDatabase;
  let config: Config;
  let app: ReturnType<typeof appWithoutKafka>;
  let admin: TestUser;
  let alice: TestUser;
  let bob: TestUser;

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db);
    app = appWithoutKafka(config, db);
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

  /** Applies one chunk through the ledger's write path; returns the ids it applied. */
  async function applyChunk(inputs: readonly CommandInput[]): Promise<Set<string>> {
    const schema = createCommandSchema(config.limits);
    const items = inputs.map((input) => {
      const command = schema.parse(input);
      return { command, fingerprint: commandFingerprint(command), partition: null, offset: null, principal: 'test' };
    });
    const result = await applyCommands(db.pool, items, { balanceMinorMax: BigInt(config.limits.balanceMinorMax) });
    return new Set(result.replies.filter((r) => r.status === 'applied').map((r) => r.command_id));
  }

  /** The database's clock now (the one that stamps postings) and every user's balances. */
  async function sample(users: readonly number[]): Promise<Sample> {
    const { rows } = await db.pool.query<{ at: string; owner_id: string | null; kind: string | null; balance: string }>(
      `WITH clock AS (SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at)
       SELECT clock.at, a.owner_id, a.kind, a.balance FROM clock
       LEFT JOIN accounts a ON a.owner_id = ANY($1::bigint[]) AND a.kind IN ('user_available', 'user_reserved', 'user_incoming')`,
      [users],
    );
    const of = (user: number, kind: string) =>
      BigInt(rows.find((r) => Number(r.owner_id) === user && r.kind === kind)?.balance ?? '0');
    const view = (u: number) => ({
      amount: formatMinor(of(u, 'user_available') + of(u, 'user_incoming')),
      reserved: formatMinor(of(u, 'user_reserved')),
      incoming: formatMinor(of(u, 'user_incoming')),
    });
    return { at: rows[0]!.at, balances: new Map(users.map((u) => [u, view(u)])) };
  }

  it('answers, for every instant recorded during a random stream, the balances recorded then', async () => {
    const users = [alice.id, bob.id, (await createUser(db, config)).id];
    const stepArb = fc.record({
      kind: fc.constantFrom('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer', 'settle'),
      user: fc.integer({ min: 0, max: users.length - 1 }),
      other: fc.integer({ min: 1, max: users.length - 1 }),
      minor: fc.integer({ min: 1, max: 20_000 }),
      pick: fc.nat(),
      endsChunk: fc.boolean(),
      sampleAfter: fc.boolean(),
    });
    const [steps] = fc.sample(fc.array(stepArb, { minLength: 120, maxLength: 120 }), { numRuns: 1, seed: 20261128 });
    const samples: Sample[] = [await sample(users)];
    const openOrders: Array<{ user: number; order: number }> = [];
    const unsettled: Array<{ id: string; user: number; minor: number }> = [];
    let chunk: CommandInput[] = [];
    let transfersThisChunk: Array<{ id: string; user: number; minor: number }> = [];
    let order = 0;
    for (const [i, step] of steps!.entries()) {
      const user = users[step.user]!;
      const id = `pit-${i}`;
      const amount = formatMinor(BigInt(step.minor));
      if (step.kind === 'deposit') chunk.push({ id, type: 'deposit', user_id: user, amount });
      if (step.kind === 'withdraw') chunk.push({ id, type: 'withdraw', user_id: user, amount });
      if (step.kind === 'reserve') {
        order += 1;
        chunk.push({ id, type: 'reserve', user_id: user, service_id: 1, order_id: order, amount });
        openOrders.push({ user, order });
      }
      if ((step.kind === 'capture' || step.kind === 'release') && openOrders.length > 0) {
        const [open] = openOrders.splice(step.pick % openOrders.length, 1);
        chunk.push(
          step.kind === 'capture'
            ? { id, type: 'capture', user_id: open!.user, service_id: 1, order_id: open!.order, amount: '0.01' }
            : { id, type: 'release', user_id: open!.user, service_id: 1, order_id: open!.order },
        );
      }
      if (step.kind === 'transfer') {
        const recipient = users[(step.user + step.other) % users.length]!;
        chunk.push({ id, type: 'transfer', user_id: user, recipient_id: recipient, amount });
        transfersThisChunk.push({ id, user: recipient, minor: step.minor });
      }
      if (step.kind === 'settle' && unsettled.length > 0) {
        const [transfer] = unsettled.splice(step.pick % unsettled.length, 1);
        chunk.push({
          id: `~settle:${transfer!.id}`,
          type: 'settle',
          user_id: transfer!.user,
          amount: formatMinor(BigInt(transfer!.minor)),
        });
      }
      if (step.endsChunk || i === steps!.length - 1) {
        const applied = await applyChunk(chunk);
        unsettled.push(...transfersThisChunk.filter((t) => applied.has(t.id)));
        chunk = [];
        transfersThisChunk = [];
        if (step.sampleAfter) samples.push(await sample(users));
      }
    }
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
        });
      }
    }
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
