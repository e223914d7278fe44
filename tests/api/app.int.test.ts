import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withOverrides } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { createReadinessProbe } from '../../src/health.ts';
import { createKafka } from '../../src/kafka/client.ts';
import { createTestDatabase, testConfig, testKafka, testLog, type TestDatabase } from '../helpers/stack.ts';
import { appWithoutKafka } from '../helpers/gateway.ts';

describe('gateway health endpoints', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('answers /healthz while the process is up', async () => {
    const config = testConfig(db);
    const app = appWithoutKafka(config, db, {
      readiness: createReadinessProbe({ pool: db.pool, kafka: testKafka(config), probeWaitMs: 5_000 }),
    });
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
    await app.close();
  });

  it('is ready when PostgreSQL and Kafka both answer', async () => {
    const config = testConfig(db);
    const app = appWithoutKafka(config, db, {
      readiness: createReadinessProbe({ pool: db.pool, kafka: testKafka(config), probeWaitMs: 5_000 }),
    });
    const response = await app.inject({ method: 'GET', url: '/readyz/' });
    expect(response.statusCode).toBe(200);
    expect(response.json().checks.kafka.ok).toBe(true);
    expect(response.json().checks.postgres.ok).toBe(true);
    await app.close();
  });

  it('is not ready, quickly, when Kafka does not answer', async () => {
    const config = testConfig(db);
    const kafka = createKafka({ brokers: ['127.0.0.1:1'], clientId: 'nobody', log: testLog, retriesMax: 0 });
    const app = appWithoutKafka(config, db, {
      readiness: createReadinessProbe({ pool: db.pool, kafka, probeWaitMs: 1_000 }),
    });
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json().checks).toMatchObject({ kafka: { ok: false }, postgres: { ok: true } });
    await app.close();
  });

  it('logs answered requests as REQUEST_LOG says: by default only slow ones, one line each', async () => {
    const linesFor = async (requestLog: 'none' | 'slow' | 'all', slowMs: number) => {
      const lines: Array<Record<string, unknown>> = [];
      const stream = new PassThrough();
      stream.on('data', (chunk: Buffer) =>
        lines.push(
          ...chunk
            .toString()
            .trim()
            .split('\n')
            .map((line) => JSON.parse(line) as Record<string, unknown>),
        ),
      );
      const config = withOverrides(testConfig(db), { http: { requestLog, requestLogSlowMs: slowMs } });
      const app = appWithoutKafka(config, db, { log: createLogger({ level: 'info', name: 'requests' }, stream) });
      for (let i = 0; i < 3; i += 1)
        expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
      await app.close();
      await new Promise((resolve) => setImmediate(resolve));
      return lines.filter((line) => line.route !== undefined);
    };
    expect(testConfig(db).http.requestLog).toBe('slow');
    expect(await linesFor('slow', 60_000)).toEqual([]);
    expect(await linesFor('none', 1)).toEqual([]);
    const all = await linesFor('all', 60_000);
    expect(all.map((line) => [line.msg, line.route, line.status])).toEqual(
      Array(3).fill(['request answered', '/healthz', 200]),
    );
  });

  it('answers 500 concurrent /readyz calls with one PostgreSQL query and one Kafka check, not one each', async () => {
    const config = testConfig(db);
    const kafka = testKafka(config);
    const counted = { queries: 0, admins: 0 };
    const pool = {
      query: (...args: Parameters<typeof db.pool.query>) => {
        counted.queries += 1;
        return (db.pool.query as (...a: unknown[]) => unknown)(...args);
      },
    } as unknown as typeof db.pool;
    const countingKafka = Object.assign(Object.create(kafka) as typeof kafka, {
      admin: (...args: Parameters<typeof kafka.admin>) => {
        counted.admins += 1;
        return kafka.admin(...args);
      },
    });
    const app = appWithoutKafka(config, db, {
      readiness: createReadinessProbe({ pool, kafka: countingKafka, probeWaitMs: 5_000, refreshMs: 60_000 }),
    });
    const answers = await Promise.all(Array.from({ length: 500 }, () => app.inject({ method: 'GET', url: '/readyz' })));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(500).fill(200));
    expect(counted).toEqual({ queries: 1, admins: 1 });
    await app.close();
  });

  it('says what is not ready in fixed words, never an internal error message', async () => {
    const config = testConfig(db);
    const kafka = createKafka({ brokers: ['127.0.0.1:1'], clientId: 'nobody', log: testLog, retriesMax: 0 });
    const failing = {
      query: async () => {
        throw new Error('password authentication failed for user "secret-db-user" at 10.1.2.3');
      },
    } as unknown as typeof db.pool;
    const app = appWithoutKafka(config, db, {
      readiness: createReadinessProbe({ pool: failing, kafka, probeWaitMs: 1_000 }),
    });
    const response = await app.inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(503);
    expect(response.json().checks).toMatchObject({
      postgres: { ok: false, error: 'PostgreSQL did not answer' },
      kafka: { ok: false, error: 'the Kafka cluster could not be described' },
    });
    expect(response.body).not.toMatch(/secret-db-user|10\.1\.2\.3|127\.0\.0\.1|ECONNREFUSED/);
    await app.close();
  });

  it('answers an unknown path with a coded 404', async () => {
    const config = testConfig(db);
    const app = appWithoutKafka(config, db, { readiness: async () => ({ ready: true, checks: {} as never }) });
    const response = await app.inject({ method: 'GET', url: '/nope' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ code: 'not_found' });
    await app.close();
  });
});
