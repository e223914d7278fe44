/**
 * The balance events topic, against the real broker and database: one event per applied
 * command for its user, numbered by the user's balance version without gaps, threshold alerts
 * once per crossing, the same bytes when a command is delivered again, and the same events
 * from a replay of the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balanceOfUser } from '../../src/api/read-model.ts';
import { balanceEventSchema } from '../../src/commands/event-schema.ts';
import { reconcile } from '../../src/tools/reconcile.ts';
import type { Config } from '../../src/config.ts';
import { createCommandWorker, type CommandWorker } from '../../src/consumer/worker.ts';
import type { Consumer, Kafka } from '../../src/kafka/client.ts';
import {
  collectReplies,
  publish,
  replayEverything,
  waitForSettles,
  type ReplyCollector,
  type WireCommand,
} from '../helpers/commands.ts';
import {
  createTestDatabase,
  createTestTopics,
  testConfig,
  testKafka,
  testLog,
  uniqueSuffix,
  type TestDatabase,
} from '../helpers/stack.ts';

interface SeenEvent {
  readonly key: string;
  readonly value: string;
  readonly event: {
    event_id: string;
    command_id: string;
    type: string;
    user_id: number;
    sequence: number;
    balances: { available: string; reserved: string };
    alert?: { alert_id: string; direction: string; threshold: string };
  };
}

/** How long the events of commands already applied may take to show on the topic. */
const EVENTS_WAIT_MS = 30_000;

describe('balance events', () => {
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  let worker: CommandWorker;
  let replies: ReplyCollector;
  let events: Consumer;
  const seen: SeenEvent[] = [];
  const run = uniqueSuffix();
  const id = (name: string) => `${run}-${name}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db, { consumer: { holdExpirySweepMs: 200 } });
    kafka = testKafka(config);
    await createTestTopics(kafka, config);
    worker = createCommandWorker({ config, kafka, pool: db.pool, log: testLog });
    await worker.start();
    replies = await collectReplies(kafka, config.topics.replies);
    events = kafka.consumer({ groupId: `events-${uniqueSuffix()}`, maxWaitTimeInMs: 100 });
    await events.connect();
    await events.subscribe({ topic: config.topics.events, fromBeginning: true });
    await events.run({
      eachMessage: async ({ message }) => {
        const value = String(message.value);
        seen.push({ key: String(message.key), value, event: JSON.parse(value) });
      },
    });
  });
  afterAll(async () => {
    await events?.disconnect();
    await replies?.stop();
    await worker?.stop();
    await db?.drop();
  });

  async function send(commands: WireCommand[]) {
    await publish(kafka, config.topics.commands, commands);
    return replies.waitFor(commands.map((c) => c.id));
  }

  /** The events seen for a user once `count` arrived, or all seen after the wait: a shortfall is a count. */
  async function eventsOf(userId: number, count: number): Promise<SeenEvent[]> {
    const deadline = Date.now() + EVENTS_WAIT_MS;
    const of = () => seen.filter((s) => s.event.user_id === userId);
    while (of().length < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    return of();
  }

  const storedPayloads = async (pool: import('pg').Pool) =>
    (await pool.query('SELECT user_id, sequence, part, payload FROM balance_events ORDER BY user_id, sequence, part'))
      .rows;

  it('emits one event per applied command of every type, for its user, in sequence, and none for a rejection', async () => {
    const [alice, bob] = [9_101, 9_102];
    const order = (order_id: number) => ({ user_id: alice, service_id: 4, order_id });
    const sent = await send([
      { id: id('dep'), type: 'deposit', user_id: alice, amount: '100.00' },
      { id: id('wd'), type: 'withdraw', user_id: alice, amount: '10.00' },
      { id: id('wd-big'), type: 'withdraw', user_id: alice, amount: '1000.00' },
      { id: id('res'), type: 'reserve', ...order(1), amount: '30.00' },
      { id: id('cap'), type: 'capture', ...order(1), amount: '20.00' },
      { id: id('res2'), type: 'reserve', ...order(2), amount: '5.00' },
      { id: id('rel'), type: 'release', ...order(2) },
      { id: id('res3'), type: 'reserve', ...order(3), amount: '5.00', expires_in_s: 1 },
      { id: id('tr'), type: 'transfer', user_id: alice, recipient_id: bob, amount: '15.00' },
    ]);
    expect(sent.get(id('wd-big'))).toMatchObject({ status: 'rejected' });

    const ofAlice = await eventsOf(alice, 9);
    expect(ofAlice.map((s) => [s.event.sequence, s.event.type, s.event.command_id])).toEqual([
      [1, 'deposit', id('dep')],
      [2, 'withdraw', id('wd')],
      [3, 'reserve', id('res')],
      [4, 'capture', id('cap')],
      [5, 'reserve', id('res2')],
      [6, 'release', id('rel')],
      [7, 'reserve', id('res3')],
      [8, 'transfer_out', id('tr')],
      [9, 'expire', `~expire:${id('res3')}`],
    ]);
    expect(ofAlice.every((s) => s.key === String(alice))).toBe(true);
    expect(ofAlice[3]!.event).toMatchObject({
      event_id: `${id('cap')}:${alice}`,
      transactions: [
        { transaction_type: 'capture', amount: '-20.00', service_id: 4, order_id: 1 },
        { transaction_type: 'release', amount: '10.00', service_id: 4, order_id: 1 },
      ],
      balances: { available: '70.00', reserved: '0.00' },
    });
    expect(ofAlice.at(-1)!.event.balances).toEqual({ available: '55.00', reserved: '0.00' });
    const ofBob = await eventsOf(bob, 1);
    expect(ofBob.map((s) => [s.event.sequence, s.event.type, s.event.balances])).toEqual([
      [1, 'transfer_in', { available: '15.00', reserved: '0.00' }],
    ]);
    expect((await balanceOfUser(db.pool, alice))?.version).toBe(9);
    expect((await balanceOfUser(db.pool, bob))?.version).toBe(1);
    // What went out is what was stored with the commands, byte for byte.
    const stored = (await storedPayloads(db.pool)).filter((r) => [alice, bob].includes(Number(r.user_id)));
    expect(stored.map((r) => r.payload)).toEqual([...ofAlice, ...ofBob].map((s) => s.value));
  });

  it('sends the same bytes again when a command is delivered again, and no new sequence', async () => {
    const carol = 9_103;
    const deposit: WireCommand = { id: id('carol-dep'), type: 'deposit', user_id: carol, amount: '1.00' };
    await send([deposit]);
    const [first] = await eventsOf(carol, 1);
    await publish(kafka, config.topics.commands, [deposit]);
    const again = await eventsOf(carol, 2);
    expect(again.map((s) => s.value)).toEqual([first!.value, first!.value]);
    expect((await balanceOfUser(db.pool, carol))?.version).toBe(1);
  });

  it('fires a threshold alert once per crossing, with its command, and sends it again unchanged', async () => {
    const dan = 9_104;
    const alert = (name: string, direction: 'below' | 'above', threshold: string): WireCommand => ({
      id: id(name),
      type: 'set_alert',
      user_id: dan,
      direction,
      threshold,
    });
    const withdraw = (name: string, amount: string): WireCommand => ({
      id: id(name),
      type: 'withdraw',
      user_id: dan,
      amount,
    });
    // Three sends, each waiting for its replies, so the alerts' state also crosses chunk boundaries.
    const first = await send([
      { id: id('dan-dep'), type: 'deposit', user_id: dan, amount: '100.00' }, // 100.00
      alert('dan-low', 'below', '50.00'),
      alert('dan-high', 'above', '120.00'),
      withdraw('dan-w1', '30.00'), // 70.00
      withdraw('dan-w2', '30.00'), // 40.00: below 50 (low fires)
    ]);
    await send([
      withdraw('dan-w3', '10.00'), // 30.00: still below, nothing
      { id: id('dan-dep2'), type: 'deposit', user_id: dan, amount: '100.00' }, // 130.00: above 120 (high fires)
    ]);
    const sent = await send([
      withdraw('dan-w4', '85.00'), // 45.00: below 50 again (low fires again)
      { id: id('dan-rm'), type: 'remove_alert', user_id: dan, alert_id: id('dan-low') },
      { id: id('dan-rm-again'), type: 'remove_alert', user_id: dan, alert_id: id('dan-low') },
      { id: id('dan-dep3'), type: 'deposit', user_id: dan, amount: '10.00' }, // 55.00
      withdraw('dan-w5', '10.00'), // 45.00: low is gone, nothing
    ]);
    expect(first.get(id('dan-low'))).toMatchObject({ status: 'applied' });
    expect(sent.get(id('dan-rm-again'))).toMatchObject({ status: 'rejected', code: 'alert_not_found' });

    const ofDan = await eventsOf(dan, 11);
    expect(ofDan.map((s) => [s.event.sequence, s.event.type, s.event.command_id])).toEqual([
      [1, 'deposit', id('dan-dep')],
      [2, 'withdraw', id('dan-w1')],
      [3, 'withdraw', id('dan-w2')],
      [3, 'threshold_crossed', id('dan-w2')],
      [4, 'withdraw', id('dan-w3')],
      [5, 'deposit', id('dan-dep2')],
      [5, 'threshold_crossed', id('dan-dep2')],
      [6, 'withdraw', id('dan-w4')],
      [6, 'threshold_crossed', id('dan-w4')],
      [7, 'deposit', id('dan-dep3')],
      [8, 'withdraw', id('dan-w5')],
    ]);
    const fired = ofDan.filter((s) => s.event.type === 'threshold_crossed').map((s) => s.event);
    expect(fired.map((e) => [e.event_id, e.alert, e.balances.available])).toEqual([
      [
        `${id('dan-w2')}:${dan}/${id('dan-low')}`,
        { alert_id: id('dan-low'), direction: 'below', threshold: '50.00' },
        '40.00',
      ],
      [
        `${id('dan-dep2')}:${dan}/${id('dan-high')}`,
        { alert_id: id('dan-high'), direction: 'above', threshold: '120.00' },
        '130.00',
      ],
      [
        `${id('dan-w4')}:${dan}/${id('dan-low')}`,
        { alert_id: id('dan-low'), direction: 'below', threshold: '50.00' },
        '45.00',
      ],
    ]);
    expect(fired.every((e) => balanceEventSchema.safeParse(e).success)).toBe(true);
    const alerts = await db.pool.query('SELECT id, past FROM balance_alerts WHERE user_id = $1', [dan]);
    expect(alerts.rows).toEqual([{ id: id('dan-high'), past: false }]);

    // Delivered again (a crash before the offset commit): the same two events, byte for byte.
    await publish(kafka, config.topics.commands, [withdraw('dan-w4', '85.00')]);
    const again = await eventsOf(dan, 13);
    expect(again.slice(11).map((s) => s.value)).toEqual(ofDan.slice(7, 9).map((s) => s.value));
  });

  it('numbers 10,000 random commands for 100 users without a gap, one event per applied command', async () => {
    const users = Array.from({ length: 100 }, (_, i) => 20_000 + i);
    const commands = randomCommands(users, 10_000, 20261129);
    await publish(kafka, config.topics.commands, commands);
    // Bounded waits that end in counts: a command or event that never comes is a number below.
    const decided = async () =>
      Number(
        (await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM commands WHERE id LIKE 'rnd-%'")).rows[0]!.n,
      );
    const decidedBy = Date.now() + 60_000;
    while ((await decided()) < commands.length && Date.now() < decidedBy)
      await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await decided()).toBe(commands.length);
    await waitForSettles(db.pool);
    const applied = await db.pool.query<{ user_id: string; n: string }>(
      `SELECT user_id, count(*) AS n FROM commands
       WHERE status = 'applied' AND type NOT IN ('set_alert', 'remove_alert') AND user_id = ANY($1::bigint[])
       GROUP BY user_id`,
      [users],
    );
    const expected = new Map(applied.rows.map((r) => [Number(r.user_id), Number(r.n)]));
    const total = [...expected.values()].reduce((a, b) => a + b, 0);
    const deadline = Date.now() + EVENTS_WAIT_MS;
    // Balance events only: alert events share their command's sequence, and counting them here
    // ended the wait before every balance event had arrived (a CI run).
    const mine = () => seen.filter((s) => users.includes(s.event.user_id) && s.event.type !== 'threshold_crossed');
    while (new Set(mine().map((s) => s.event.event_id)).size < total && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 100));

    const problems: string[] = [];
    for (const user of users) {
      const sequences = [
        ...new Set(
          mine()
            .filter((s) => s.event.user_id === user)
            .map((s) => s.event.sequence),
        ),
      ];
      const want = expected.get(user) ?? 0;
      const contiguous = sequences.length === want && sequences.every((seq, i) => seq === i + 1);
      if (!contiguous) problems.push(`user ${user}: ${sequences.length} sequences for ${want} applied commands`);
    }
    expect(problems).toEqual([]);
    expect(total).toBeGreaterThan(5_000);
    // The stream registers alerts, and they fired: the replay below has them to reproduce.
    const alerts = seen.filter((s) => users.includes(s.event.user_id) && s.event.type === 'threshold_crossed');
    expect(alerts.length).toBeGreaterThan(100);
  });

  it('is made again, byte for byte, by a replay of the log into an empty database', async () => {
    const rebuilt = await createTestDatabase();
    try {
      await replayEverything(kafka, config, rebuilt.pool);
      const live = await storedPayloads(db.pool);
      expect(live.length).toBeGreaterThan(5_000);
      expect(await storedPayloads(rebuilt.pool)).toEqual(live);
      // And the same alerts, each as far past its threshold, and the same versions.
      expect(await reconcile(db.pool, rebuilt.pool)).toEqual([]);
      const alerts = 'SELECT count(*)::int AS n, count(*) FILTER (WHERE past)::int AS past FROM balance_alerts';
      const [liveAlerts] = (await db.pool.query(alerts)).rows;
      expect(liveAlerts.n).toBeGreaterThan(100);
      expect(liveAlerts.past).toBeGreaterThan(0);
    } finally {
      await rebuilt.drop();
    }
  });
});

/** Deposits, withdrawals, holds, transfers and threshold alerts among `users`, from a seeded generator. */
function randomCommands(users: readonly number[], count: number, seed: number): WireCommand[] {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    // The high bits: an LCG's low bits repeat with short periods.
    return Math.floor((state / 2_147_483_648) * n);
  };
  const commands: WireCommand[] = [];
  const orders = new Map<number, number>();
  for (let i = 0; i < count; i += 1) {
    const user = users[next(users.length)]!;
    const amount = `${1 + next(50)}.${String(next(100)).padStart(2, '0')}`;
    const id = `rnd-${seed}-${i}`;
    const kind = next(10);
    if (next(100) < 3) {
      const direction = next(2) === 0 ? ('below' as const) : ('above' as const);
      commands.push({ id, type: 'set_alert', user_id: user, direction, threshold: `${1 + next(200)}.00` });
    } else if (kind < 4) commands.push({ id, type: 'deposit', user_id: user, amount });
    else if (kind < 6) commands.push({ id, type: 'withdraw', user_id: user, amount });
    else if (kind < 7) {
      const order = (orders.get(user) ?? 0) + 1;
      orders.set(user, order);
      commands.push({ id, type: 'reserve', user_id: user, service_id: 1, order_id: order, amount });
    } else if (kind < 8 && orders.has(user))
      commands.push({ id, type: 'release', user_id: user, service_id: 1, order_id: orders.get(user)! });
    else {
      const recipient = users[(users.indexOf(user) + 1 + next(users.length - 1)) % users.length]!;
      commands.push({ id, type: 'transfer', user_id: user, recipient_id: recipient, amount });
    }
  }
  return commands;
}
