/**
 * Rebuilds decide as the live run did, whatever the replaying process's environment says: the
 * limits a command was decided with are the ones its partition's log recorded. The live run
 * lowers AMOUNT_MINOR_MAX and ALERTS_PER_USER_MAX halfway; the replay runs with limits higher
 * than either, and must still reject exactly what the live run rejected.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { withOverrides } from '../../src/config.ts';
import { createCommandWorker, type CommandWorker } from '../../src/consumer/worker.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { reconcile } from '../../src/tools/reconcile.ts';
import { LIMITS_RECORD_KEY, RECORD_TYPE_HEADER } from '../../src/commands/limits-record.ts';
import { INTERNAL_PROOF_HEADER } from '../../src/commands/internal-proof.ts';
import { publish, replayEverything, waitForSettles } from '../helpers/commands.ts';
import { createUser, startGateway } from '../helpers/gateway.ts';
import {
  countCommands,
  createTestDatabase,
  createTestTopics,
  eventually,
  testConfig,
  testKafka,
  testLog,
  type TestDatabase,
} from '../helpers/stack.ts';

const USERS = 30;
const LOWERED = { amountMinorMax: 10_000, alertsPerUserMax: 1 };

describe('a replay decides with the limits the log recorded', () => {
  let live: TestDatabase;
  let rebuilt: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  let run: string;
  let sent = 0;

  const deposit = (user: number, amount: string, tag: string) => ({
    id: `${run}-${tag}-${user}`,
    type: 'deposit' as const,
    user_id: user,
    amount,
  });
  const alert = (user: number, tag: string) => ({
    id: `${run}-${tag}-${user}`,
    type: 'set_alert' as const,
    user_id: user,
    direction: 'below' as const,
    threshold: '1.00',
  });
  const users = Array.from({ length: USERS }, (_, i) => 7_000_000 + i);

  async function send(commands: ReturnType<typeof deposit | typeof alert>[]) {
    await publish(kafka, config.topics.commands, commands);
    sent += commands.length;
    await eventually(async () => ((await countCommands(live)) >= sent ? true : undefined), 60_000, 'the live consumer');
  }

  beforeAll(async () => {
    live = await createTestDatabase();
    rebuilt = await createTestDatabase();
    config = testConfig(live);
    kafka = testKafka(config);
    run = randomUUID().slice(0, 8);
    await createTestTopics(kafka, config);
  });
  afterAll(async () => {
    await rebuilt?.drop();
    await live?.drop();
  });

  it('lowers limits after traffic, replays into an empty database with other limits, and reconciles equal', async () => {
    // Before: the defaults. 500.00 deposits and two alerts per user apply.
    let worker: CommandWorker = createCommandWorker({ config, kafka, pool: live.pool, log: testLog });
    await worker.start();
    await send(users.map((u) => deposit(u, '500.00', 'a')));
    await send([...users.map((u) => alert(u, 'a1')), ...users.map((u) => alert(u, 'a2'))]);
    await worker.stop();

    // The operator lowers the limits: the new consumer records them on every partition it owns.
    const lowered = withOverrides(config, { limits: LOWERED });
    worker = createCommandWorker({ config: lowered, kafka, pool: live.pool, log: testLog });
    await worker.start();
    try {
      await send(users.map((u) => deposit(u, '1.00', 'b')));
      const recorded = async () =>
        (await live.pool.query('SELECT count(*)::int AS n FROM decision_limits WHERE amount_minor_max = $1', [10_000]))
          .rows[0].n === config.topics.commandPartitions
          ? true
          : undefined;
      await eventually(recorded, 30_000, 'the lowered limits recorded on every partition');
      await send([...users.map((u) => deposit(u, '500.00', 'c')), ...users.map((u) => alert(u, 'c1'))]);
      await checkGatewaySkew(lowered);
    } finally {
      await worker.stop();
    }
    await waitForSettles(live.pool);
    const codes = async (db: TestDatabase) =>
      (
        await db.pool.query<{ id: string; status: string; code: string }>(
          'SELECT id, status, code FROM commands ORDER BY id',
        )
      ).rows;
    const liveCodes = await codes(live);
    // The live run really decided with both: before the records, 500.00 and two alerts applied;
    // after them, every 500.00 deposit and every further alert was refused.
    expect(liveCodes.filter((c) => c.id.includes(`${run}-a-`)).every((c) => c.status === 'applied')).toBe(true);
    expect(liveCodes.filter((c) => c.id.includes(`${run}-a2-`)).every((c) => c.status === 'applied')).toBe(true);
    expect(new Set(liveCodes.filter((c) => c.id.includes(`${run}-c-`)).map((c) => c.code))).toEqual(
      new Set(['amount_too_large']),
    );
    expect(new Set(liveCodes.filter((c) => c.id.includes(`${run}-c1-`)).map((c) => c.code))).toEqual(
      new Set(['alert_limit_exceeded']),
    );

    // Today's environment says something else again: higher than both.
    const today = withOverrides(config, { limits: { amountMinorMax: 10_000_000_000, alertsPerUserMax: 50 } });
    await replayEverything(kafka, today, rebuilt.pool);
    expect(await codes(rebuilt)).toEqual(liveCodes);
    expect(await reconcile(live.pool, rebuilt.pool)).toEqual([]);
    expect(await verifyLedger(rebuilt.pool)).toEqual([]);
  });

  /**
   * A gateway that still has the old, higher limit accepts what the consumer now refuses: the
   * command gets a recorded rejection, never a 202 followed by a dead letter.
   */
  async function checkGatewaySkew(consumerConfig: Config): Promise<void> {
    const gateway = await startGateway(config, live, kafka);
    try {
      const service = await createUser(live, config, 'service');
      const response = await gateway.app.inject({
        method: 'POST',
        url: '/api/add_funds/',
        headers: { ...service.header, 'idempotency-key': randomUUID() },
        payload: { user_id: users[0], amount: '500.00' },
      });
      sent += 1;
      expect(consumerConfig.limits.amountMinorMax).toBeLessThan(config.limits.amountMinorMax);
      expect(response.statusCode).toBe(409);
      expect(response.json()).toMatchObject({ code: 'amount_too_large' });
    } finally {
      await gateway.stop();
    }
  }

  it('refuses a forged limits record, and a command after it on the same partition still applies', async () => {
    const partition = 0;
    const worker = createCommandWorker({ config, kafka, pool: live.pool, log: testLog });
    await worker.start();
    try {
      const first = (
        await live.pool.query<{ record_offset: string }>(
          'SELECT record_offset FROM decision_limits WHERE source_partition = $1',
          [partition],
        )
      ).rows[0];
      expect(first).toBeDefined();
      // It names the record in force, as anyone who can read the log could: only the proof is missing.
      const forged = JSON.stringify({
        type: 'limits',
        version: 1,
        supersedes: first!.record_offset,
        amount_minor_max: 1,
        balance_minor_max: 1,
        alerts_per_user_max: 0,
      });
      await publish(kafka, config.topics.commands, [
        {
          raw: forged,
          key: LIMITS_RECORD_KEY,
          partition,
          headers: { [RECORD_TYPE_HEADER]: 'limits', [INTERNAL_PROOF_HEADER]: 'v1.AAAAAAAA.AAAA' },
        },
      ]);
      // The canary: a deposit on the same partition still applies, with the limits in force.
      const canaryUser = users.find((u) => u % 3 === 0) ?? users[0]!;
      await publish(kafka, config.topics.commands, [
        { raw: JSON.stringify(deposit(canaryUser, '1.00', 'canary')), key: String(canaryUser), partition },
      ]);
      sent += 1;
      await eventually(async () => ((await countCommands(live)) >= sent ? true : undefined), 30_000, 'the canary');
      const canary = await live.pool.query('SELECT status FROM commands WHERE id = $1', [
        `${run}-canary-${canaryUser}`,
      ]);
      expect(canary.rows).toEqual([{ status: 'applied' }]);
      // The forged record changed nothing (the worker's own default limits took over meanwhile,
      // by a genuine record, or nothing changed at all): never amount 1, balance 1.
      const after = (await live.pool.query('SELECT * FROM decision_limits ORDER BY source_partition')).rows;
      expect(after.every((row: { amount_minor_max: string }) => row.amount_minor_max !== '1')).toBe(true);
    } finally {
      await worker.stop();
    }
  });
});
