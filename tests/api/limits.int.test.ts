import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { PrincipalRateLimit } from '../../src/api/rate-limit.ts';
import { type Config, withOverrides } from '../../src/config.ts';
import { createCommandWorker } from '../../src/consumer/worker.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { publish } from '../helpers/commands.ts';
import { appWithoutKafka, createUser, startGateway } from '../helpers/gateway.ts';
import {
  createTestDatabase,
  createTestTopics,
  eventually,
  testConfig,
  testKafka,
  testLog,
  uniqueSuffix,
  type TestDatabase,
} from '../helpers/stack.ts';

describe('limits, each refused or bounded cleanly', () => {
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db, { limits: { replyWaitMs: 300 }, consumer: { batchCommandsMax: 3 } });
    kafka = testKafka(config);
    await createTestTopics(kafka, config);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('REPLY_WAIT_MS: with no consumer running, a synchronous request answers 202 and a Location after the wait', async () => {
    const gateway = await startGateway(config, db, kafka);
    try {
      const user = await createUser(db, config, 'service');
      const started = Date.now();
      const response = await gateway.app.inject({
        method: 'POST',
        url: '/api/add_funds/',
        headers: { ...user.header, 'idempotency-key': 'wait-1' },
        payload: { user_id: user.id, amount: '1.00' },
      });
      expect(response.statusCode).toBe(202);
      expect(response.headers.location).toMatch(/^\/api\/commands\//);
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      const poll = await gateway.app.inject({
        method: 'GET',
        url: response.headers.location as string,
        headers: user.header,
      });
      expect(poll.json()).toEqual({ command_id: response.json().command_id, status: 'pending' });
    } finally {
      await gateway.stop();
    }
  });

  it('PG_POOL_CONNECTIONS_MAX: with every connection busy, a request answers 503 after PG_CONNECT_WAIT_MS, not 500', async () => {
    const { createPool } = await import('../../src/db/pool.ts');
    const { appWithoutKafka } = await import('../helpers/gateway.ts');
    const small = { ...config, db: { ...config.db, poolConnectionsMax: 1, connectWaitMs: 200 } };
    const pool = createPool(db.url, small.db, 'limits-test');
    const held = await pool.connect();
    try {
      const user = await createUser(db, config);
      const app = appWithoutKafka(small, { ...db, pool });
      const response = await app.inject({
        method: 'GET',
        url: `/api/balances/?user_id=${user.id}`,
        headers: user.header,
      });
      expect(response.statusCode).toBe(503);
      expect(response.json().code).toBe('service_unavailable');
    } finally {
      held.release();
      await pool.end();
    }
  });

  it('BATCH_COMMANDS_MAX: the consumer applies at most that many commands per transaction', async () => {
    const run = uniqueSuffix();
    await publish(
      kafka,
      config.topics.commands,
      Array.from({ length: 10 }, (_, i) => ({
        id: `${run}-${i}`,
        type: 'deposit' as const,
        user_id: 31,
        amount: '1.00',
      })),
    );
    const worker = createCommandWorker({ config, kafka, pool: db.pool, log: testLog });
    await worker.start();
    try {
      const count = async () =>
        (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM commands WHERE id LIKE $1', [`${run}-%`]))
          .rows[0]!.n;
      await eventually(async () => ((await count()) === 10 ? true : undefined), 30_000, 'ten deposits').catch(
        async () => expect(await count()).toBe(10),
      );
      // Rows inserted by one PostgreSQL transaction share its xmin: the sizes of the groups are
      // the sizes of the transactions the consumer really ran, whatever it counted itself.
      const { rows } = await db.pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM commands WHERE id LIKE $1 GROUP BY xmin::text',
        [`${run}-%`],
      );
      expect(Math.max(...rows.map((r) => r.n))).toBeLessThanOrEqual(3);
      expect(rows.length).toBeGreaterThanOrEqual(4);
    } finally {
      await worker.stop();
    }
  });

  it('ALLOW_TRANSFERS_TO_NEW_ACCOUNTS: off, a never-seen recipient is 409 recipient_not_found; on, the transfer goes ahead', async () => {
    const sender = await createUser(db, config);
    const nobody = Number.MAX_SAFE_INTEGER - Math.floor(Math.random() * 1e6);
    const transfer = (app: ReturnType<typeof appWithoutKafka>) =>
      app.inject({
        method: 'POST',
        url: '/api/transfer_funds/',
        headers: { ...sender.header, 'idempotency-key': randomUUID() },
        payload: { sender_id: sender.id, recipient_id: nobody, amount: '1.00' },
      });
    const strict = appWithoutKafka(config, db);
    const open = appWithoutKafka(withOverrides(config, { auth: { allowTransfersToNewAccounts: true } }), db);
    expect((await transfer(strict)).json()).toMatchObject({ code: 'recipient_not_found' });
    // Without Kafka an allowed request gets as far as publishing: 503.
    expect((await transfer(open)).statusCode).toBe(503);
    await Promise.all([strict.close(), open.close()]);
  });

  it('RATE_LIMIT_PER_S, RATE_LIMIT_BURST: past its burst a principal gets 429 rate_limited with Retry-After; others go on', async () => {
    const limited = withOverrides(config, { auth: { rateLimitPerS: 1, rateLimitBurst: 3 } });
    // A clock that stands still, so a slow machine cannot refill the bucket between requests.
    const bucket = new PrincipalRateLimit(limited.auth.rateLimitPerS, limited.auth.rateLimitBurst);
    const stillClock = Date.now();
    const app = appWithoutKafka(limited, db, {
      rateLimit: Object.assign(Object.create(bucket) as PrincipalRateLimit, {
        take: (userId: number) => bucket.take(userId, stillClock),
      }),
    });
    const [spender, other] = await Promise.all([createUser(db, config, 'service'), createUser(db, config, 'service')]);
    const deposit = (
      caller: typeof spender,
      url = '/api/add_funds/',
      payload: object = { user_id: 1, amount: '1.00' },
    ) => app.inject({ method: 'POST', url, headers: { ...caller.header, 'idempotency-key': randomUUID() }, payload });
    // Without Kafka an allowed request gets as far as publishing: 503. A refused one never does.
    const statuses = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await deposit(spender)).statusCode);
    expect(statuses).toEqual([503, 503, 503, 429, 429]);
    const refused = await deposit(spender, '/api/balance_alerts/', { user_id: 1, below: '1.00' });
    expect(refused.statusCode).toBe(429);
    expect(refused.json()).toMatchObject({ code: 'rate_limited' });
    expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await deposit(other)).statusCode).toBe(503);
    await app.close();
  });
});
