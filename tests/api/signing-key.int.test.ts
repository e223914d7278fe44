/**
 * A gateway signs who sent each command with a key the consumers accept, and knows when they do
 * not. Given a new key before the consumers are (the wrong order of a rotation), it answers
 * commands with a prompt 503 and reports itself not ready, instead of publishing commands the
 * consumers would dead-letter (a 202, then pending, then 404). In the documented order (both keys
 * everywhere first), it keeps signing with the old key until every partition accepts the new one.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/api/gateway.ts';
import { keyIdOf } from '../../src/commands/key-ring.ts';
import { type Config, withOverrides } from '../../src/config.ts';
import { createCommandWorker, type CommandWorker } from '../../src/consumer/worker.ts';
import { readDeadLetters } from '../../src/tools/dlq.ts';
import { balancesOf } from '../helpers/commands.ts';
import { createUser, startGateway, type TestUser } from '../helpers/gateway.ts';
import { eventually, startStack, TEST_INTERNAL_COMMAND_SECRET, testLog, type RunningStack } from '../helpers/stack.ts';

const K1 = TEST_INTERNAL_COMMAND_SECRET;
const K2 = 'test-only-second-internal-command-key-0123456789';

describe('the key a gateway signs with', () => {
  let stack: RunningStack;
  let config: Config;
  let service: TestUser;
  const gateways: Gateway[] = [];
  let stackWorkerStopped = false;

  const keyed = (secret: string, previous?: string): Config =>
    withOverrides(config, {
      internalCommands: { secret, acceptedSecrets: previous ? [previous] : [], replaySecrets: [] },
      limits: { replyWaitMs: 10_000 },
    });

  async function gatewayOn(gatewayConfig: Config): Promise<Gateway> {
    const gateway = await startGateway(gatewayConfig, stack.db, stack.kafka);
    gateways.push(gateway);
    return gateway;
  }

  /** Waits until every partition's record accepts exactly `secrets`. */
  async function recorded(secrets: string[]): Promise<void> {
    const wanted = secrets.map(keyIdOf).sort().join(',');
    await eventually(
      async () => {
        const { rows } = await stack.db.pool.query<{ ids: string[] | null }>(
          'SELECT accepted_key_ids AS ids FROM decision_limits WHERE source_topic = $1',
          [config.topics.commands],
        );
        const all = rows.map((r) => (r.ids ?? []).join(','));
        return all.length === config.topics.commandPartitions && all.every((ids) => ids === wanted) ? true : undefined;
      },
      30_000,
      `every partition recording ${wanted}`,
    );
  }

  const deposit = (gateway: Gateway, userId: number, headers: Record<string, string> = {}) =>
    gateway.app.inject({
      method: 'POST',
      url: '/api/add_funds/',
      headers: { ...service.header, 'idempotency-key': randomUUID(), ...headers },
      payload: { user_id: userId, amount: '1.00' },
    });

  beforeAll(async () => {
    // The consumer on K1 alone; it records K1 on every partition as soon as it is assigned them.
    stack = await startStack();
    config = stack.config;
    service = await createUser(stack.db, config, 'service');
    await recorded([K1]);
  });
  afterAll(async () => {
    for (const gateway of gateways) await gateway.stop();
    if (stackWorkerStopped) await stack?.db.drop();
    else await stack?.stop();
  });

  it('refuses commands at once with 503, and is not ready, while the consumers do not accept its key', async () => {
    const gateway = await gatewayOn(keyed(K2));
    const user = await createUser(stack.db, config);
    const started = Date.now();
    const refused = await deposit(gateway, user.id);
    expect([refused.statusCode, refused.json().code]).toEqual([503, 'service_unavailable']);
    expect(refused.json().message).toMatch(/do not accept the key/);
    // Prompt: no reply was waited for (REPLY_WAIT_MS is 10 s here).
    expect(Date.now() - started).toBeLessThan(5_000);
    const async = await deposit(gateway, user.id, { prefer: 'respond-async' });
    expect(async.statusCode).toBe(503);
    const ready = await gateway.app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json().checks.signing_key).toMatchObject({ ok: false });
    const metrics = await gateway.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/^balance_signing_key_accepted 0$/m);
    // Nothing was published: nothing dead-lettered, nothing applied.
    expect(await readDeadLetters(stack.kafka, config.topics.deadLetters, 1_000)).toEqual([]);
    expect((await balancesOf(stack.db.pool, user.id)).available).toBe(0n);
  });

  it('in the documented order keeps signing with the old key until every partition accepts the new one', async () => {
    // Every process is given K2 as current and K1 as previous; the consumer first.
    await stack.worker.stop();
    stackWorkerStopped = true;
    const worker: CommandWorker = createCommandWorker({
      config: keyed(K2, K1),
      kafka: stack.kafka,
      pool: stack.db.pool,
      log: testLog,
    });
    await worker.start();
    try {
      const gateway = await gatewayOn(keyed(K2, K1));
      const user = await createUser(stack.db, config);
      // Whatever the records say at this instant, what it signs is accepted.
      const first = await deposit(gateway, user.id);
      expect(first.statusCode, first.body).toBe(201);
      await recorded([K1, K2]);
      expect((await gateway.signingKey.refresh()).id).toBe(keyIdOf(K2));
      const second = await deposit(gateway, user.id);
      expect(second.statusCode, second.body).toBe(201);
      expect((await balancesOf(stack.db.pool, user.id)).available).toBe(200n);
      expect((await gateway.app.inject({ method: 'GET', url: '/readyz' })).json().checks.signing_key).toMatchObject({
        ok: true,
      });
    } finally {
      await worker.stop();
    }
  });
});
