/**
 * A dependency that is down must pause the consumer, never make it skip commands. PostgreSQL is
 * made unreachable for the consumer alone (a TCP proxy in front of the real server is cut) for
 * OUTAGE_MS, while commands keep arriving.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { consumerReadiness, registerConsumerMetrics } from '../../src/consumer/metrics.ts';
import { createCommandWorker, type CommandWorker } from '../../src/consumer/worker.ts';
import { createPool, type Pool } from '../../src/db/pool.ts';
import { createReadinessProbe } from '../../src/health.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { Metrics } from '../../src/metrics.ts';
import { balancesOf, publish } from '../helpers/commands.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
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

const OUTAGE_MS = Number(process.env.PG_OUTAGE_MS ?? 60_000);
const USERS = 30;
const DEPOSITS_PER_USER = 10;

describe('PostgreSQL unreachable for the consumer', () => {
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  let proxy: TcpProxy;
  let pool: Pool;
  let worker: CommandWorker;

  beforeAll(async () => {
    db = await createTestDatabase();
    const target = new URL(db.url);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const viaProxy = new URL(db.url);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    config = testConfig(db, {
      db: { url: viaProxy.toString(), connectWaitMs: 2_000 },
      consumer: { applyRetriesMax: 2, applyRetryBackoffMs: 50, partitionPauseMs: 2_000 },
    });
    kafka = testKafka(config);
    await createTestTopics(kafka, config);
    pool = createPool(config.db.url!, config.db, 'test-outage');
    worker = createCommandWorker({ config, kafka, pool, log: testLog });
    await worker.start();
  });
  afterAll(async () => {
    await worker?.stop();
    await pool?.end();
    await proxy?.close();
    await db?.drop();
  });

  it('pauses its partitions and fails readiness while it lasts, skips nothing, and applies everything after', async () => {
    const run = uniqueSuffix();
    const deposit = (user: number, i: number) => ({
      id: `${run}-${user}-${i}`,
      type: 'deposit' as const,
      user_id: user,
      amount: '1.00',
    });
    const users = Array.from({ length: USERS }, (_, i) => 2_000 + i);
    const readiness = createReadinessProbe({
      pool,
      kafka,
      probeWaitMs: 1_000,
      local: { consumer: consumerReadiness(worker.stats) },
    });
    const metrics = new Metrics();
    registerConsumerMetrics(metrics, worker.stats);
    await publish(
      kafka,
      config.topics.commands,
      users.map((u) => deposit(u, 0)),
    );
    await eventually(async () => (await readiness()).ready || undefined, 30_000, 'ready before the outage');

    await proxy.cut();
    const outageStarted = Date.now();
    for (let i = 1; i < DEPOSITS_PER_USER; i += 1)
      await publish(
        kafka,
        config.topics.commands,
        users.map((u) => deposit(u, i)),
      );
    await eventually(async () => (worker.stats.paused.size > 0 ? true : undefined), 30_000, 'a paused partition');
    const during = await readiness();
    expect(during.ready).toBe(false);
    expect(during.checks.consumer!.error).toMatch(/partitions paused/);
    expect(metrics.render()).toMatch(/balance_consumer_partition_paused\{partition="\d+"\} 1/);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, OUTAGE_MS - (Date.now() - outageStarted))));
    const ages = [...worker.stats.oldestUnappliedAt.values()].map((at) => Date.now() - at);
    expect(Math.max(...ages)).toBeGreaterThan(OUTAGE_MS / 2);
    expect(worker.stats.unprocessable + worker.stats.unrecorded).toBe(0);

    await proxy.restore();
    const expected = USERS * DEPOSITS_PER_USER;
    const applied = async () =>
      (await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM commands WHERE id LIKE $1', [`${run}-%`]))
        .rows[0]!.n;
    await eventually(
      async () => ((await applied()) === expected ? true : undefined),
      60_000,
      `all ${expected} commands`,
    ).catch(async () => {
      throw new Error(`after the outage ${await applied()} of ${expected} commands were applied`);
    });
    expect(await applied()).toBe(expected);
    for (const user of users) expect((await balancesOf(db.pool, user)).available).toBe(BigInt(DEPOSITS_PER_USER * 100));
    await eventually(async () => (await readiness()).ready || undefined, 30_000, 'ready after the outage');
    expect(worker.stats.paused.size).toBe(0);
    expect(worker.stats.pauses).toBeGreaterThan(0);
    expect(worker.stats.unprocessable + worker.stats.unrecorded + worker.stats.deadLettered).toBe(0);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });
});
