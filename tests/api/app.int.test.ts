import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('answers an unknown path with a coded 404', async () => {
    const config = testConfig(db);
    const app = appWithoutKafka(config, db, { readiness: async () => ({ ready: true, checks: {} as never }) });
    const response = await app.inject({ method: 'GET', url: '/nope' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ code: 'not_found' });
    await app.close();
  });
});
