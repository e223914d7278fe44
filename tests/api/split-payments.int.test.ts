/**
 * Split payments through the real gateway, broker and consumer: one debit of the sender, one
 * credit and one settle per leg, each credit visible to its recipient's next read, and nothing
 * at all when the sender cannot pay the whole.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/api/gateway.ts';
import type { Config } from '../../src/config.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { balancesOf, collectReplies, publish, readCommandIds, type ReplyCollector } from '../helpers/commands.ts';
import { createUser, startGateway, type TestUser } from '../helpers/gateway.ts';
import { startStack, uniqueSuffix, type RunningStack, type TestDatabase } from '../helpers/stack.ts';

describe('split payments through the real stack', () => {
  let stack: RunningStack;
  let db: TestDatabase;
  let config: Config;
  let gateway: Gateway;
  let billing: TestUser;
  let replies: ReplyCollector;

  beforeAll(async () => {
    stack = await startStack({ limits: { replyWaitMs: 15_000, transferRecipientsMax: 20 } });
    ({ db, config } = stack);
    gateway = await startGateway(config, db, stack.kafka);
    billing = await createUser(db, config, 'service');
    replies = await collectReplies(stack.kafka, config.topics.replies);
  });
  afterAll(async () => {
    await replies?.stop();
    await gateway?.stop();
    await stack?.stop();
  });

  const post = (url: string, caller: TestUser, payload: object, key: string = randomUUID()) =>
    gateway.app.inject({ method: 'POST', url, headers: { ...caller.header, 'idempotency-key': key }, payload });
  /**
   * The applied settles of a transfer, once there are `legs` of them or after a bounded wait: a
   * lost leg shows up as a shorter list, not as a timeout.
   */
  const settlesOfTransfer = async (transferId: string, legs: number) => {
    const read = async () =>
      (
        await db.pool.query<{ id: string; user_id: string }>(
          "SELECT id, user_id FROM commands WHERE type = 'settle' AND status = 'applied' AND split_part(substr(id, 9), '#', 1) = $1 ORDER BY id",
          [transferId],
        )
      ).rows;
    const deadline = Date.now() + 15_000;
    let rows = await read();
    while (rows.length < legs && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      rows = await read();
    }
    return rows;
  };

  it('pays a seller and the platform in one decision; each recipient reads their credit at once', async () => {
    const [buyer, seller, platform] = await Promise.all([
      createUser(db, config),
      createUser(db, config),
      createUser(db, config),
    ]);
    await post('/api/add_funds/', billing, { user_id: buyer.id, amount: '100.00' });
    const key = `split-${uniqueSuffix()}`;
    const paid = await post(
      '/api/transfer_funds/',
      buyer,
      {
        sender_id: buyer.id,
        recipients: [
          { recipient_id: seller.id, amount: '90.00' },
          { recipient_id: platform.id, amount: '10.00', comment: 'fee' },
        ],
        comment: 'order 77',
      },
      key,
    );
    expect(paid.statusCode, paid.body).toBe(201);
    const body = paid.json();
    expect(body.legs.map((l: { recipient_id: number; amount: string }) => [l.recipient_id, l.amount])).toEqual([
      [seller.id, '90.00'],
      [platform.id, '10.00'],
    ]);
    expect(body.legs[1].recipient_transaction).toMatchObject({ transaction_type: 'transfer_in', comment: 'fee' });
    expect(body.balances[String(buyer.id)]).toEqual({ available: '0.00', reserved: '0.00' });
    // Read-your-writes for every recipient, right after the answer.
    for (const [user, amount] of [
      [seller, '90.00'],
      [platform, '10.00'],
    ] as const) {
      const read = await gateway.app.inject({
        method: 'GET',
        url: `/api/balances/?user_id=${user.id}`,
        headers: user.header,
      });
      expect([user.id, read.json().amount]).toEqual([user.id, amount]);
    }
    const settles = await settlesOfTransfer(`~http:${buyer.id}:${key}`, 2);
    // One settle per leg, named by its recipient (listed in id order, not leg order).
    expect(settles.map((s) => s.id).sort()).toEqual(
      [`~settle:~http:${buyer.id}:${key}#${seller.id}`, `~settle:~http:${buyer.id}:${key}#${platform.id}`].sort(),
    );
    expect(await balancesOf(db.pool, seller.id)).toEqual({ available: 9000n, reserved: 0n, incoming: 0n });
    expect(await balancesOf(db.pool, platform.id)).toEqual({ available: 1000n, reserved: 0n, incoming: 0n });
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('moves nothing when the sender cannot pay every leg, and refuses bad legs with 400', async () => {
    const [buyer, a, b] = await Promise.all([createUser(db, config), createUser(db, config), createUser(db, config)]);
    await post('/api/add_funds/', billing, { user_id: buyer.id, amount: '50.00' });
    const short = await post('/api/transfer_funds/', buyer, {
      sender_id: buyer.id,
      recipients: [
        { recipient_id: a.id, amount: '40.00' },
        { recipient_id: b.id, amount: '10.01' },
      ],
    });
    expect([short.statusCode, short.json().code]).toEqual([409, 'insufficient_funds']);
    const bad: object[] = [
      {
        sender_id: buyer.id,
        recipients: [
          { recipient_id: a.id, amount: '1.00' },
          { recipient_id: a.id, amount: '1.00' },
        ],
      },
      { sender_id: buyer.id, recipients: [{ recipient_id: buyer.id, amount: '1.00' }] },
      { sender_id: buyer.id, recipients: [] },
      { sender_id: buyer.id, recipient_id: a.id, amount: '1.00', recipients: [{ recipient_id: b.id, amount: '1.00' }] },
      {
        sender_id: buyer.id,
        recipients: Array.from({ length: 21 }, (_, i) => ({ recipient_id: a.id + 100 * (i + 1), amount: '1.00' })),
      },
    ];
    for (const payload of bad) {
      const refused = await post('/api/transfer_funds/', buyer, payload);
      expect([JSON.stringify(payload).slice(0, 60), refused.statusCode]).toEqual([
        JSON.stringify(payload).slice(0, 60),
        400,
      ]);
    }
    // Nothing moved: no leg credited (incoming alone would also be 0 once a settle drained it).
    for (const user of [a, b])
      expect(await balancesOf(db.pool, user.id)).toEqual({ available: 0n, reserved: 0n, incoming: 0n });
    expect(await balancesOf(db.pool, buyer.id)).toEqual({ available: 5000n, reserved: 0n, incoming: 0n });
    const effects = await db.pool.query(
      "SELECT count(*)::int AS n FROM transactions WHERE user_id = ANY($1) AND transaction_type <> 'deposit'",
      [[buyer.id, a.id, b.id]],
    );
    expect(effects.rows[0].n).toBe(0);
  });

  it('publishes each leg of a split payment once, however often it is resent', async () => {
    const buyer = await createUser(db, config);
    const sellers = await Promise.all(Array.from({ length: 20 }, () => createUser(db, config)));
    await post('/api/add_funds/', billing, { user_id: buyer.id, amount: '20.00' });
    const key = randomUUID();
    const payload = {
      sender_id: buyer.id,
      recipients: sellers.map((seller) => ({ recipient_id: seller.id, amount: '1.00' })),
    };
    expect((await post('/api/transfer_funds/', buyer, payload, key)).statusCode).toBe(201);
    for (let i = 0; i < 10; i += 1) {
      const again = await post('/api/transfer_funds/', buyer, payload, key);
      expect([again.statusCode, again.json().duplicate]).toEqual([200, true]);
    }
    expect(await settlesOfTransfer(`~http:${buyer.id}:${key}`, 20)).toHaveLength(20);
    // Every settle message of this transfer on the command topic: one per leg, not one per request.
    const prefix = `~settle:~http:${buyer.id}:${key}#`;
    const sent = await readCommandIds(
      stack.kafka,
      config.topics.commands,
      (ids) => ids.filter((id) => id.startsWith(prefix)).length >= 20,
    );
    expect(sent.filter((id) => id.startsWith(prefix))).toHaveLength(20);
  });

  it('takes a split payment on Kafka; a malformed one is refused and the canary behind it applies', async () => {
    const sender = 800_000 + Math.floor(Math.random() * 90_000);
    const run = uniqueSuffix();
    const id = (step: string) => `kafka-split-${run}-${step}`;
    await publish(stack.kafka, config.topics.commands, [
      { id: id('dep'), type: 'deposit', user_id: sender, amount: '30.00' },
      {
        raw: JSON.stringify({
          id: id('dup'),
          type: 'transfer',
          user_id: sender,
          recipients: [
            { recipient_id: sender + 1, amount: '1.00' },
            { recipient_id: sender + 1, amount: '1.00' },
          ],
        }),
        key: String(sender),
      },
      {
        id: id('canary'),
        type: 'transfer',
        user_id: sender,
        recipients: [
          { recipient_id: sender + 1, amount: '20.00' },
          { recipient_id: sender + 2, amount: '10.00' },
        ],
      },
    ]);
    const got = await replies.waitFor([id('dup'), id('canary')], 60_000);
    expect([got.get(id('dup'))!.code, got.get(id('canary'))!.code]).toEqual(['invalid_command', 'ok']);
    expect((await settlesOfTransfer(id('canary'), 2)).map((s) => Number(s.user_id)).sort((a, b) => a - b)).toEqual([
      sender + 1,
      sender + 2,
    ]);
    expect(await balancesOf(db.pool, sender + 1)).toEqual({ available: 2000n, reserved: 0n, incoming: 0n });
    expect(await balancesOf(db.pool, sender + 2)).toEqual({ available: 1000n, reserved: 0n, incoming: 0n });
    expect(await verifyLedger(db.pool)).toEqual([]);
  });
});
