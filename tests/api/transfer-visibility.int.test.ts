/**
 * "Applied" means the recipient can spend it: a transfer is shown as applied (poll, repeat, end
 * of a wait) only once its settle is in, even while the broker refuses the consumer's sends.
 * The broker refuses them for real: the command topic's max.message.bytes is set below any
 * record batch, so the settle's produce fails after the transfer was committed in PostgreSQL.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/api/gateway.ts';
import { createUser, startGateway, type TestUser } from '../helpers/gateway.ts';
import { createCommandWorker } from '../../src/consumer/worker.ts';
import { eventually, startStack, testLog, type RunningStack } from '../helpers/stack.ts';

describe('a transfer is applied to its caller only once its settle is in', () => {
  let stack: RunningStack;
  let gateway: Gateway;
  let service: TestUser;

  beforeAll(async () => {
    stack = await startStack(
      { consumer: { partitionPauseMs: 200 }, limits: { replyWaitMs: 1_000 } },
      { startWorker: false },
    );
    gateway = await startGateway(stack.config, stack.db, stack.kafka);
    service = await createUser(stack.db, stack.config, 'service');
  });
  afterAll(async () => {
    await setCommandTopicMessageBytes(null);
    await gateway?.stop();
    await stack?.stop();
  });

  const post = (url: string, caller: TestUser, payload: object, headers: Record<string, string> = {}) =>
    gateway.app.inject({
      method: 'POST',
      url,
      headers: { ...caller.header, 'idempotency-key': randomUUID(), ...headers },
      payload,
    });

  async function setCommandTopicMessageBytes(bytes: number | null): Promise<void> {
    if (!stack) return;
    const admin = stack.kafka.admin();
    await admin.connect();
    try {
      await admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: 2,
            name: stack.config.topics.commands,
            // 1 MiB is the broker's default: what the topic had before the test.
            configEntries: [{ name: 'max.message.bytes', value: String(bytes ?? 1_048_588) }],
          },
        ],
      });
    } finally {
      await admin.disconnect();
    }
  }

  it('never answers applied while the settle cannot be published, and the recipient can spend it once it says so', async () => {
    const [sender, recipient] = [await createUser(stack.db, stack.config), await createUser(stack.db, stack.config)];
    const first = createCommandWorker({ config: stack.config, kafka: stack.kafka, pool: stack.db.pool, log: testLog });
    await first.start();
    expect((await post('/api/add_funds', service, { user_id: sender.id, amount: '10.00' })).statusCode).toBe(201);
    await first.stop();
    const key = randomUUID();
    const transfer = { sender_id: sender.id, recipient_id: recipient.id, amount: '7.00' };
    const sent = await post('/api/transfer_funds', sender, transfer, {
      'idempotency-key': key,
      prefer: 'respond-async',
    });
    expect(sent.statusCode).toBe(202);
    // From here on the broker refuses every produce to the command topic, settles included.
    await setCommandTopicMessageBytes(16);
    const worker = createCommandWorker({ config: stack.config, kafka: stack.kafka, pool: stack.db.pool, log: testLog });
    await worker.start();
    try {
      await checkWhileRefused(sender, recipient, key, transfer);
    } finally {
      await worker.stop();
    }
  });

  async function checkWhileRefused(
    sender: TestUser,
    recipient: TestUser,
    key: string,
    transfer: object,
  ): Promise<void> {
    const committed = async () =>
      (await stack.db.pool.query('SELECT 1 FROM commands WHERE id = $1', [`~http:${sender.id}:${key}`])).rowCount === 1
        ? true
        : undefined;
    await eventually(committed, 30_000, 'the transfer committed in PostgreSQL');
    const poll = () => gateway.app.inject({ method: 'GET', url: `/api/commands/${key}`, headers: sender.header });
    const shown: string[] = [];
    for (let i = 0; i < 10; i += 1) {
      shown.push((await poll()).json().status);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(shown.filter((status) => status === 'applied')).toHaveLength(0);
    expect((await poll()).json()).toMatchObject({ status: 'pending', credit: 'in_flight' });
    // A repeat of the request is not answered from the committed row either (an asynchronous
    // one is the kind that reads it: it would answer 200 at once).
    const repeat = await post('/api/transfer_funds', sender, transfer, {
      'idempotency-key': key,
      prefer: 'respond-async',
    });
    expect(repeat.statusCode).not.toBe(200);
    expect(repeat.statusCode).not.toBe(201);

    await setCommandTopicMessageBytes(null);
    await eventually(
      async () => ((await poll()).json().status === 'applied' ? true : undefined),
      30_000,
      'the transfer shown as applied',
    );
    // Sent only after "applied": it lands behind the settle and finds the money there.
    const spend = await post('/api/withdraw_funds', service, { user_id: recipient.id, amount: '7.00' });
    expect(spend.json()).not.toMatchObject({ code: 'insufficient_funds' });
    expect(spend.statusCode).toBe(201);
  }
});
