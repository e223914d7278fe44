/** The consumer as its own process: observable on its own port, without a gateway beside it. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { publish } from '../helpers/commands.ts';
import { envFor, freePort, spawnService, type ServiceProcess } from '../helpers/processes.ts';
import {
  createTestDatabase,
  createTestTopics,
  eventually,
  testConfig,
  testKafka,
  uniqueSuffix,
  type TestDatabase,
} from '../helpers/stack.ts';

describe('npm run start:consumer', () => {
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  let consumer: ServiceProcess;
  let base = '';

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db);
    kafka = testKafka(config);
    await createTestTopics(kafka, config);
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    consumer = spawnService('src/consumer/main.ts', { ...envFor(config), CONSUMER_HTTP_PORT: String(port) });
  });
  afterAll(async () => {
    await consumer?.kill('SIGTERM');
    await db?.drop();
  });

  it('serves /healthz, /readyz once it joined its group, and its own metrics', async () => {
    const ready = await eventually(
      async () => {
        const response = await fetch(`${base}/readyz`).catch(() => null);
        return response?.status === 200 ? response.json() : undefined;
      },
      60_000,
      `the consumer ready (output: ${consumer.output().slice(-500)})`,
    );
    expect(ready).toMatchObject({
      ready: true,
      checks: { postgres: { ok: true }, kafka: { ok: true }, consumer: { ok: true } },
    });
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok' });
    const id = `standalone-${uniqueSuffix()}`;
    await publish(kafka, config.topics.commands, [{ id, type: 'deposit', user_id: 5, amount: '1.00' }]);
    const metrics = await eventually(
      async () => {
        const text = await (await fetch(`${base}/metrics`)).text();
        return text.includes('balance_consumer_commands_total{outcome="applied"} 1') ? text : undefined;
      },
      30_000,
      'the applied deposit in /metrics',
    );
    expect(metrics).toMatch(/balance_consumer_lag\{partition="\d+"\} 0/);
    expect(metrics).toContain('balance_consumer_partition_paused{partition=');
    expect(metrics).toContain('balance_consumer_unprocessable_total 0');
  });
});
