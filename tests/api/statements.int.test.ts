/**
 * GET /api/statements/?user_id=N&month=YYYY-MM: a month's opening balance, its rows with the
 * running balance after each, and its closing balance, in the report's time zone.
 *
 * The property: a random stream of every command type is applied chunk by chunk, recording
 * every user's balances after each chunk. The chunks are then moved, in order, to one Moscow
 * midnight each from 2026-01-01 on, so months have rows and some land exactly on a month's
 * first instant. For every month, the statement (read page by page) must open with the
 * balances recorded before the month, close with those recorded at its end, run from one to the
 * other through its rows, and open where the previous month closed.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { expireIdOf, httpScopedId } from '../../src/commands/schema.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { appWithoutKafka, createUser, type TestUser } from '../helpers/gateway.ts';
import { balancesWithStamp, chunkApplier, runRandomStream, UTC_MICROS_SQL } from '../helpers/random-stream.ts';
import { createTestDatabase, reportMonth, testConfig, type TestDatabase } from '../helpers/stack.ts';

interface Balances {
  amount: string;
  reserved: string;
  incoming: string;
}
interface Recorded {
  /** The chunk's timestamp (the last posting's), in UTC with microseconds. */
  readonly stamp: string;
  readonly balances: ReadonlyMap<number, Balances>;
}
interface StatementPage {
  from: string;
  to: string;
  complete: boolean;
  opening: Balances;
  closing: Balances;
  rows: Array<{ id: number; created_at: string; balance_after: { amount: string; reserved: string } }>;
  next_cursor: string | null;
}

const ZERO: Balances = { amount: '0.00', reserved: '0.00', incoming: '0.00' };
const FIRST_DAY_MS = Date.parse('2026-01-01T00:00:00+03:00');
const DAY_MS = 86_400_000;
/** The first instant of each month in Moscow time (UTC+3 all year), from 2025-12 to 2026-06. */
const MONTHS = ['2025-12', '2026-01', '2026-02', '2026-03', '2026-04', '2026-05', '2026-06'];
const monthStart = (month: string) => Date.parse(`${month}-01T00:00:00+03:00`);

describe('monthly statements', () => {
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

  const get = (url: string, user: TestUser, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url, headers: { ...user.header, ...headers } });

  async function record(users: readonly number[]): Promise<Recorded> {
    const { stamp, balances } = await balancesWithStamp(
      db,
      users,
      UTC_MICROS_SQL('(SELECT max(created_at) FROM postings)'),
    );
    return { stamp: stamp ?? '', balances };
  }

  /** Moves each chunk's postings and history rows (revenue is a view of them) to its own Moscow midnight, in order. */
  async function spreadOverDays(stamps: readonly string[]): Promise<Map<string, number>> {
    const distinct = [...new Set(stamps)].sort();
    const moved = new Map(distinct.map((stamp, k) => [stamp, FIRST_DAY_MS + k * DAY_MS]));
    const olds = [...moved.keys()];
    const news = olds.map((stamp) => new Date(moved.get(stamp)!).toISOString());
    for (const table of ['postings', 'transactions']) {
      await db.pool.query(
        `UPDATE ${table} t SET created_at = m.new FROM unnest($1::timestamptz[], $2::timestamptz[]) m(old, new)
         WHERE t.created_at = m.old`,
        [olds, news],
      );
    }
    return moved;
  }

  /** Every page of a month's statement, `limit` rows at a time. */
  async function statementPages(user: number, month: string, limit: number): Promise<StatementPage[]> {
    const pages: StatementPage[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/api/statements/?user_id=${user}&month=${month}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`;
      const response = await get(url, admin);
      expect(response.statusCode, response.body).toBe(200);
      const page = response.json() as StatementPage;
      pages.push(page);
      cursor = page.next_cursor;
    } while (cursor !== null && pages.length < 1_000);
    return pages;
  }

  it('opens where the last month closed, runs through its rows to its close, and agrees with the balances recorded', async () => {
    const users = [alice.id, bob.id, (await createUser(db, config)).id];
    const recorded: Recorded[] = [];
    await runRandomStream({
      users,
      steps: 200,
      seed: 20261129,
      prefix: 'stmt',
      applyChunk,
      afterChunk: async () => {
        recorded.push(await record(users));
      },
    });
    const moved = await spreadOverDays(recorded.map((r) => r.stamp).filter((s) => s !== ''));
    expect(await verifyLedger(db.pool)).toEqual([]);
    const boundaries = MONTHS.map(monthStart);
    // Chunks exactly on a month's first instant must exist, or the boundary was never tested.
    expect([...moved.values()].filter((t) => boundaries.includes(t)).length).toBeGreaterThanOrEqual(2);

    /** The balances recorded after the last chunk moved to before `instant`. */
    const recordedBefore = (user: number, instant: number): Balances =>
      recorded
        .filter((r) => r.stamp !== '' && moved.get(r.stamp)! < instant)
        .at(-1)
        ?.balances.get(user) ?? ZERO;

    let rowsSeen = 0;
    for (const user of users) {
      let previousClosing: Balances = ZERO;
      for (const [i, month] of MONTHS.entries()) {
        const pages = await statementPages(user, month, 4);
        const [first] = pages;
        const to = i + 1 < MONTHS.length ? monthStart(MONTHS[i + 1]!) : Date.parse('2026-07-01T00:00:00+03:00');
        for (const page of pages) {
          expect({ from: page.from, to: page.to, complete: page.complete }).toEqual({
            from: new Date(monthStart(month)).toISOString().replace('Z', '000Z'),
            to: new Date(to).toISOString().replace('Z', '000Z'),
            complete: true,
          });
          expect([page.opening, page.closing]).toEqual([first!.opening, first!.closing]);
        }
        const where = `user ${user}, ${month}`;
        expect(first!.opening, `${where}: opening`).toEqual(recordedBefore(user, monthStart(month)));
        expect(first!.closing, `${where}: closing`).toEqual(recordedBefore(user, to));
        expect(first!.opening, `${where}: opens where the last month closed`).toEqual(previousClosing);
        previousClosing = first!.closing;

        const rows = pages.flatMap((p) => p.rows);
        const times = rows.map((r) => Date.parse(r.created_at));
        expect(
          times.every((t) => t >= monthStart(month) && t < to),
          `${where}: rows in the month`,
        ).toBe(true);
        expect(times, `${where}: rows in time order`).toEqual([...times].sort((a, b) => a - b));
        const stored = await db.pool.query<{ count: string }>(
          'SELECT count(*) FROM transactions WHERE user_id = $1 AND created_at >= $2 AND created_at < $3',
          [user, new Date(monthStart(month)), new Date(to)],
        );
        expect(rows.length, `${where}: every row, once`).toBe(Number(stored.rows[0]!.count));
        expect(new Set(rows.map((r) => r.id)).size).toBe(rows.length);
        const { amount, reserved } = first!.closing;
        expect(rows.at(-1)?.balance_after ?? first!.opening, `${where}: runs to the close`).toMatchObject({
          amount,
          reserved,
        });
        rowsSeen += rows.length;
      }
    }
    expect(rowsSeen).toBeGreaterThan(100);
  });

  it('runs the current month to now, not complete, and refuses a month not begun', async () => {
    const carol = await createUser(db, config);
    await applyChunk([{ id: 'carol-1', type: 'deposit', user_id: carol.id, amount: '12.50' }]);
    const month = reportMonth(config);
    const current = (await get(`/api/statements/?user_id=${carol.id}&month=${month}`, carol)).json();
    expect(current).toMatchObject({
      user_id: carol.id,
      month,
      time_zone: 'Europe/Moscow',
      complete: false,
      currency: 'RUB',
      opening: ZERO,
      closing: { amount: '12.50', reserved: '0.00', incoming: '0.00' },
      next_cursor: null,
    });
    expect(current.rows).toHaveLength(1);
    expect(current.rows[0]).toMatchObject({ amount: '12.50', transaction_type: 'deposit', command_id: 'carol-1' });
    const future = await get(`/api/statements/?user_id=${carol.id}&month=2099-01`, carol);
    expect(future.statusCode).toBe(400);
    expect(future.json().details).toEqual([{ field: 'month', message: 'must not be in the future' }]);
  });

  it('gives CSV that a spreadsheet opens safely: RFC 4180 quoting, formulas neutralised', async () => {
    const dave = await createUser(db, config);
    await applyChunk([
      { id: 'dave-1', type: 'deposit', user_id: dave.id, amount: '10.00', comment: '=HYPERLINK("http://x";"y")' },
    ]);
    await applyChunk([{ id: 'dave-2', type: 'withdraw', user_id: dave.id, amount: '2.50', comment: 'a;b"c\nd' }]);
    const month = reportMonth(config);
    const json = (await get(`/api/statements/?user_id=${dave.id}&month=${month}`, dave)).json();
    const asks: Array<{ query: string; headers: Record<string, string> }> = [
      { query: '&format=csv', headers: {} },
      { query: '', headers: { accept: 'text/csv' } },
    ];
    for (const ask of asks) {
      const csv = await get(`/api/statements/?user_id=${dave.id}&month=${month}${ask.query}`, dave, ask.headers);
      expect(csv.statusCode).toBe(200);
      expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
      expect(csv.headers['content-disposition']).toBe(`attachment; filename="statement-${dave.id}-${month}.csv"`);
      const [first, second] = json.rows;
      expect(csv.body).toBe(
        [
          'created_at;id;transaction_type;amount;service_id;order_id;counterparty_id;comment;balance_after;reserved_after',
          ';;opening;;;;;;0.00;0.00',
          `${first.created_at};${first.id};deposit;10.00;;;;"'=HYPERLINK(""http://x"";""y"")";10.00;0.00`,
          `${second.created_at};${second.id};withdraw;-2.50;;;;"a;b""c\nd";7.50;0.00`,
          ';;closing;;;;;;7.50;0.00',
          '',
        ].join('\r\n'),
      );
    }
  });

  it("shows another caller's Idempotency-Key only as an opaque reference, as the history does", async () => {
    const erin = await createUser(db, config);
    const shop = await createUser(db, config, 'service');
    const key = httpScopedId(shop.id, 'order-4711-topup');
    await applyChunk([{ id: key, type: 'deposit', user_id: erin.id, amount: '3.00' }]);
    const month = reportMonth(config);
    const asErin = await get(`/api/statements/?user_id=${erin.id}&month=${month}`, erin);
    expect(asErin.body).not.toContain('order-4711');
    expect(asErin.json().rows[0].command_id).toMatch(/^~other:[A-Za-z0-9_-]{16}$/);
    const history = await get(`/api/transactions/?user_id=${erin.id}`, erin);
    expect(asErin.json().rows[0].command_id).toBe(history.json().items[0].command_id);
    // Keyed: hashing a guessed key the way an unkeyed mask would does not confirm it.
    const guessed = `~other:${createHash('sha256').update(key).digest('base64url').slice(0, 16)}`;
    expect(asErin.json().rows[0].command_id).not.toBe(guessed);
    const asShop = await get(`/api/statements/?user_id=${erin.id}&month=${month}`, shop);
    expect(asShop.json().rows[0].command_id, 'its own key, as it sent it').toBe('order-4711-topup');
  });

  it("masks the merchant's key inside the id of an expired hold, too", async () => {
    const frank = await createUser(db, config);
    const shop = await createUser(db, config, 'service');
    const reserveId = httpScopedId(shop.id, 'order-4712-r');
    await applyChunk([
      { id: `frank-dep`, type: 'deposit', user_id: frank.id, amount: '3.00' },
      { id: reserveId, type: 'reserve', user_id: frank.id, service_id: 1, order_id: 4712, amount: '1.00' },
    ]);
    await applyChunk([{ id: expireIdOf(reserveId), type: 'expire', user_id: frank.id, service_id: 1, order_id: 4712 }]);
    const month = reportMonth(config);
    for (const url of [
      `/api/statements/?user_id=${frank.id}&month=${month}`,
      `/api/transactions/?user_id=${frank.id}`,
    ]) {
      const asFrank = await get(url, frank);
      expect(asFrank.body, url).not.toContain('order-4712');
      const ids = (asFrank.json().rows ?? asFrank.json().items).map((r: { command_id: string }) => r.command_id);
      expect(ids, url).toContainEqual(expect.stringMatching(/^~expire:~other:[A-Za-z0-9_-]{16}$/));
      const asShop = (await get(url, shop)).json();
      expect((asShop.rows ?? asShop.items).map((r: { command_id: string }) => r.command_id)).toContain(
        '~expire:order-4712-r',
      );
    }
  });

  it('keeps the ownership rules and refuses bad input with a 400 naming the field', async () => {
    expect((await get(`/api/statements/?user_id=${bob.id}&month=2026-01`, alice)).statusCode).toBe(403);
    expect((await get(`/api/statements/?user_id=${alice.id}&month=2026-01`, alice)).statusCode).toBe(200);
    expect((await get(`/api/statements/?user_id=987654399&month=2026-01`, admin)).statusCode).toBe(404);
    for (const [query, field] of [
      ['month=2026-13', 'month'],
      ['month=26-01', 'month'],
      ['month=2026-01&limit=0', 'limit'],
      [`month=2026-01&limit=${config.limits.statementRowsMax + 1}`, 'limit'],
      ['month=2026-01&cursor=bm90LWEtY3Vyc29y', 'cursor'],
      ['month=2026-01&format=xml', 'format'],
      ["month=2026-01'; DROP TABLE transactions; --", 'month'],
    ]) {
      const response = await get(`/api/statements/?user_id=${alice.id}&${query}`, alice);
      expect(response.statusCode, query).toBe(400);
      expect(response.json().details.map((d: { field: string }) => d.field)).toContain(field);
    }
  });
});
