import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGateway, type Gateway } from '../../src/api/gateway.ts';
import { createLogger } from '../../src/log.ts';
import { createUser, startGateway, type TestUser } from '../helpers/gateway.ts';
import { partitionOfKey } from '../../src/kafka/partition.ts';
import { httpScopedId } from '../../src/commands/schema.ts';
import {
  createTestDatabase,
  eventually,
  startStack,
  testConfig,
  testKafka,
  type RunningStack,
  type TestDatabase,
} from '../helpers/stack.ts';

const ENDPOINTS = [
  '/api/add_funds/',
  '/api/withdraw_funds/',
  '/api/reserve_funds/',
  '/api/deduct_funds/',
  '/api/cancel_reservation/',
  '/api/transfer_funds/',
  '/api/balance_alerts/',
  '/api/balance_alerts/remove/',
];

/** JSON values of the kinds clients get wrong: wrong types, huge and tiny numbers, unicode, nesting, injection. */
const nasty = fc.oneof(
  fc.constantFrom("1'; DROP TABLE accounts; --", '<script>', '1e400', '-0', '١٢', 'NaN', '\u0000', 'x'.repeat(5_000)),
  fc.double(),
  fc.integer(),
  fc.bigInt().map(String),
  fc.string(),
  fc.json().map((text) => JSON.parse(text) as unknown),
  fc.constant(null),
);

const body = fc.oneof(
  fc.record(
    {
      user_id: fc.oneof(fc.constant(1), nasty),
      amount: fc.oneof(fc.constantFrom('1.00', '0.01', 5), nasty),
      service_id: fc.oneof(fc.constant(3), nasty),
      order_id: fc.oneof(fc.nat(), nasty),
      sender_id: fc.oneof(fc.constant(1), nasty),
      recipient_id: fc.oneof(fc.constant(2), nasty),
      comment: fc.oneof(fc.string(), nasty),
      below: fc.oneof(fc.constantFrom('1.00', '0.01'), nasty),
      above: fc.oneof(fc.constantFrom('1.00', '0.01'), nasty),
      alert_id: fc.oneof(fc.constantFrom('low', '~http:1:low', '~other:x'), nasty),
    },
    { requiredKeys: [] },
  ),
  nasty,
  fc.string().map((text) => ({ raw: text })),
  // Duplicated keys (JSON.parse keeps the last), deep nesting, and a body that is all whitespace.
  fc.constantFrom(
    { raw: '{"user_id": 1, "user_id": "x", "amount": "1.00", "amount": -5}' },
    { raw: `{"user_id": 1, "amount": ${'['.repeat(2_000)}${']'.repeat(2_000)}}` },
    { raw: `${'{"a":'.repeat(500)}1${'}'.repeat(500)}` },
    { raw: '   ' },
  ),
);

describe('fuzzed HTTP input through the real stack', () => {
  let stack: RunningStack;
  let db: TestDatabase;
  let gateway: Gateway;
  let service: TestUser;

  beforeAll(async () => {
    stack = await startStack({ limits: { replyWaitMs: 10_000 } });
    db = stack.db;
    gateway = await startGateway(stack.config, db, stack.kafka);
    service = await createUser(db, stack.config, 'service');
  });
  afterAll(async () => {
    await gateway?.stop();
    await stack?.stop();
  });

  const ledgerState = async () =>
    (
      await db.pool.query(
        "SELECT (SELECT count(*)::int FROM commands WHERE type <> 'settle') AS commands, (SELECT coalesce(sum(balance), 0)::text FROM accounts WHERE kind <> 'external') AS held",
      )
    ).rows[0] as { commands: number; held: string };
  const deposit = (userId: number) =>
    gateway.app.inject({
      method: 'POST',
      url: '/api/add_funds/',
      headers: { ...service.header, 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      payload: { user_id: userId, amount: '0.01' },
    });
  const decided = async (id: string) =>
    (await db.pool.query('SELECT 1 FROM commands WHERE id = $1', [id])).rowCount === 1;

  /**
   * A fuzzed request counts as handled only if its command is decided (201, 200 or 409, or a 202
   * whose command is then in the database) or it was refused with a 4xx that changed nothing,
   * which is checked after a canary on the same partition is applied behind it.
   */
  it('never answers 5xx; every request is decided or refused without a change; canaries on every partition apply', async () => {
    const outcomes = { decided: 0, accepted: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ENDPOINTS),
        body,
        fc.oneof(
          { weight: 3, arbitrary: fc.uuid() },
          { weight: 1, arbitrary: fc.option(fc.string({ maxLength: 200 })) },
        ),
        async (url, payload, key) => {
          const before = await ledgerState();
          const raw = typeof payload === 'object' && payload !== null && 'raw' in payload;
          const response = await gateway.app.inject({
            method: 'POST',
            url,
            headers: {
              ...service.header,
              'content-type': 'application/json',
              ...(typeof key === 'string' ? { 'idempotency-key': key } : {}),
            },
            payload: raw ? (payload as { raw: string }).raw : JSON.stringify(payload),
          });
          expect(response.statusCode, response.body).toBeLessThan(500);
          expect(typeof response.json().code === 'string' || response.statusCode < 300).toBe(true);
          if (response.statusCode === 202) {
            // Accepted is not handled: the command must then be decided.
            const id = httpScopedId(service.id, response.json().command_id as string);
            expect(
              await eventually(async () => ((await decided(id)) ? true : undefined), 10_000, `command ${id} decided`),
            ).toBe(true);
            outcomes.accepted += 1;
          } else if (response.statusCode >= 400 && response.statusCode !== 409) {
            // The fuzzed user is 1 or garbage (refused before Kafka): a canary for user 1 lands behind it.
            expect((await deposit(1)).statusCode).toBe(201);
            const after = await ledgerState();
            expect(after).toEqual({ commands: before.commands + 1, held: String(BigInt(before.held) + 1n) });
            outcomes.refused += 1;
          } else outcomes.decided += 1;
        },
      ),
      {
        numRuns: 150,
        // Valid requests, so that "some were decided" below does not hang on chance (one CI run
        // drew none in 150).
        examples: [
          ['/api/add_funds/', { user_id: 1, amount: '1.00' }, randomUUID()],
          ['/api/transfer_funds/', { sender_id: 1, recipient_id: 2, amount: '0.01' }, randomUUID()],
          ['/api/balance_alerts/', { user_id: 1, below: '0.50' }, randomUUID()],
          ['/api/balance_alerts/remove/', { user_id: 1, alert_id: 'never-set' }, randomUUID()],
        ],
      },
    );
    expect(outcomes.refused).toBeGreaterThan(0);
    expect(outcomes.decided + outcomes.accepted).toBeGreaterThan(0);
    await canaryOnEveryPartition();
  });

  /** One deposit for a user on each partition, each answered 201 within 10 s. */
  async function canaryOnEveryPartition(): Promise<void> {
    const partitions = stack.config.topics.commandPartitions;
    const users = new Map<number, number>();
    for (let user = 200_000; users.size < partitions; user += 1) {
      const partition = partitionOfKey(String(user), partitions);
      if (!users.has(partition)) users.set(partition, user);
    }
    const answers = await Promise.all([...users.values()].map((user) => deposit(user)));
    expect(answers.map((a) => a.statusCode)).toEqual([...users.values()].map(() => 201));
  }

  /**
   * Reads of a user who exists and has rows, so every value gets past the id and user checks
   * and reaches the date handling: instants, months and cursors with impossible calendar
   * values (February 30, year 0, hour 24) that a lenient check passes on to PostgreSQL.
   */
  it('never answers 5xx to adversarial instants, months and cursors on an existing user', async () => {
    const reader = await createUser(db, stack.config, 'admin');
    const user = 300_001;
    expect((await deposit(user)).statusCode).toBe(201);
    const two = (n: number) => String(n).padStart(2, '0');
    const year = fc.oneof(fc.constantFrom(0, 1, 1969, 1970, 2026, 9999, 10000), fc.integer({ min: 0, max: 10_000 }));
    const date = fc
      .tuple(year, fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }))
      .map(([y, m, d]) => `${String(y).padStart(4, '0')}-${two(m)}-${two(d)}`);
    const time = fc
      .tuple(fc.integer({ min: 0, max: 25 }), fc.integer({ min: 0, max: 61 }), fc.integer({ min: 0, max: 61 }))
      .map(([h, m, s]) => `${two(h)}:${two(m)}:${two(s)}`);
    const offset = fc.constantFrom('Z', '+03:00', '-23:59', '+99:99', '+14:00');
    const instant = fc.oneof(
      fc.tuple(date, time, offset).map(([d, t, o]) => `${d}T${t}${o}`),
      fc.tuple(date, time).map(([d, t]) => `${d}T${t}.000000Z`),
      fc.string({ maxLength: 40 }),
    );
    const month = fc.oneof(
      fc.tuple(year, fc.integer({ min: 0, max: 13 })).map(([y, m]) => `${String(y).padStart(4, '0')}-${two(m)}`),
      fc.string({ maxLength: 10 }),
    );
    const cursorOf = (value: unknown, id: unknown) => Buffer.from(JSON.stringify([value, id])).toString('base64url');
    const cursor = fc.oneof(
      fc.tuple(date, time).map(([d, t]) => cursorOf(`${d}T${t}.000000Z`, 1)),
      fc.tuple(fc.bigInt().map(String), fc.integer()).map(([v, id]) => cursorOf(v, id)),
      fc.string({ maxLength: 60 }),
    );
    const q = encodeURIComponent;
    const url = fc.oneof(
      instant.map((at) => `/api/balances/?user_id=${user}&at=${q(at)}`),
      fc
        .tuple(cursor, fc.constantFrom('date', 'amount'))
        .map(([c, sort]) => `/api/transactions/?user_id=${user}&sort=${sort}&cursor=${q(c)}`),
      fc
        .tuple(month, fc.option(cursor), fc.constantFrom('', '&format=csv'))
        .map(([m, c, f]) => `/api/statements/?user_id=${user}&month=${q(m)}${c === null ? '' : `&cursor=${q(c)}`}${f}`),
      month.map((m) => `/api/reports/revenue/?month=${q(m)}`),
    );
    await fc.assert(
      fc.asyncProperty(url, async (target) => {
        const response = await gateway.app.inject({ method: 'GET', url: target, headers: reader.header });
        expect(response.statusCode, `${target} -> ${response.body}`).toBeLessThan(500);
      }),
      {
        numRuns: 400,
        examples: [
          [`/api/balances/?user_id=${user}&at=0000-01-01T00:00:00Z`],
          [`/api/balances/?user_id=${user}&at=2026-02-30T00:00:00Z`],
          [`/api/transactions/?user_id=${user}&cursor=${cursorOf('2026-02-30T00:00:00.000000Z', 1)}`],
          [`/api/statements/?user_id=${user}&month=0000-01`],
          [`/api/statements/?user_id=${user}&month=2026-01&cursor=${cursorOf('2026-02-30T00:00:00.000000Z', 1)}`],
          ['/api/reports/revenue/?month=0000-01'],
        ],
      },
    );
  });

  it('never answers 5xx to fuzzed query strings and paths', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/api/balances/', '/api/transactions/', '/api/reports/revenue/', '/api/commands/'),
        fc.string({ maxLength: 300 }),
        async (path, tail) => {
          const url = path.endsWith('commands/') ? `${path}${encodeURIComponent(tail)}` : `${path}?${tail}`;
          const response = await gateway.app.inject({ method: 'GET', url, headers: service.header });
          expect(response.statusCode, `${url} -> ${response.body}`).toBeLessThan(500);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('secrets in logs', () => {
  it('never writes passwords or tokens to the log', async () => {
    const db = await createTestDatabase();
    try {
      const config = testConfig(db);
      const captured: string[] = [];
      const stream = new PassThrough();
      stream.on('data', (chunk: Buffer) => captured.push(chunk.toString()));
      const log = createLogger({ level: 'trace', name: 'capture' }, stream);
      const gateway = buildGateway({ config, kafka: testKafka(config), pool: db.pool, log });
      const user = await createUser(db, config, 'user', 'a-very-secret-password');
      const login = await gateway.app.inject({
        method: 'POST',
        url: '/api/token/',
        payload: { username: user.username, password: 'a-very-secret-password' },
      });
      const { access, refresh } = login.json();
      await gateway.app.inject({
        method: 'POST',
        url: '/api/token/',
        payload: { username: user.username, password: 'wrong-secret-password' },
      });
      await gateway.app.inject({
        method: 'GET',
        url: `/api/balances/?user_id=${user.id}`,
        headers: { authorization: `Bearer ${access}` },
      });
      await gateway.app.inject({ method: 'POST', url: '/api/token/refresh/', payload: { refresh } });
      log.info(
        { password: 'a-very-secret-password', token: access, req: { headers: { authorization: `Bearer ${access}` } } },
        'a careless log call',
      );
      await gateway.app.close();
      const text = captured.join('');
      expect(text.length).toBeGreaterThan(0);
      for (const secret of ['a-very-secret-password', 'wrong-secret-password', access, refresh])
        expect(text).not.toContain(secret);
      expect(text).toContain('[redacted]');
    } finally {
      await db.drop();
    }
  });
});
