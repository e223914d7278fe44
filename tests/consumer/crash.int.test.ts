import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import {
  effectsOutOfShape,
  eventProblems,
  missingAfter,
  publish,
  readEvents,
  settlesPerTransfer,
  type ReadEvent,
  waitForSettles,
  type WireCommand,
} from '../helpers/commands.ts';
import { envFor, spawnService, type ServiceProcess } from '../helpers/processes.ts';
import {
  countCommands,
  createTestDatabase,
  createTestTopics,
  eventually,
  testConfig,
  testKafka,
  uniqueSuffix,
  type TestDatabase,
} from '../helpers/stack.ts';

const COMMANDS = 12_000;
const USERS = 300;

/** Each user's balance rises past it and dips back under it a few times: alerts fire, and re-arm. */
const ALERT_ABOVE = '20.00';

/**
 * A stream whose every deposit must apply, mixed with withdrawals and cross-user transfers, after
 * an alert per user (above ALERT_ABOVE).
 */
function commandStream(run: string): WireCommand[] {
  const commands: WireCommand[] = [];
  for (let user = 1; user <= USERS; user += 1)
    commands.push({
      id: `${run}-alert-${user}`,
      type: 'set_alert',
      user_id: user,
      direction: 'above',
      threshold: ALERT_ABOVE,
    });
  for (let i = 0; i < COMMANDS; i += 1) {
    // Each user in turn deposits, transfers and withdraws, so all three kinds apply.
    const user = 1 + (Math.floor(i / 3) % USERS);
    const id = `${run}-${i}`;
    if (i % 3 === 0) commands.push({ id, type: 'deposit', user_id: user, amount: '10.00' });
    else if (i % 3 === 1)
      commands.push({ id, type: 'transfer', user_id: user, recipient_id: 1 + ((i * 7) % USERS), amount: '3.00' });
    else commands.push({ id, type: 'withdraw', user_id: user, amount: '2.00' });
  }
  return commands;
}

/** The alert event ids the balance events imply: each move of a user's available balance from at most ALERT_ABOVE to above it. */
function expectedCrossings(events: readonly ReadEvent[], run: string): Set<string> {
  const minor = (amount: string) => BigInt(amount.replace('.', ''));
  const limit = minor(ALERT_ABOVE);
  const changes = new Map<number, Map<number, ReadEvent['event']>>();
  for (const { event } of events) {
    if (event.type === 'threshold_crossed') continue;
    const ofUser = changes.get(event.user_id) ?? new Map();
    ofUser.set(event.sequence, event);
    changes.set(event.user_id, ofUser);
  }
  const expected = new Set<string>();
  for (const [user, bySequence] of changes) {
    let past = false; // registered first in the stream, at a balance of 0.00
    for (const sequence of [...bySequence.keys()].sort((a, b) => a - b)) {
      const event = bySequence.get(sequence)!;
      const now = minor(event.balances.available) > limit;
      if (now && !past) expected.add(`${event.command_id}:${user}/${run}-alert-${user}`);
      past = now;
    }
  }
  return expected;
}

describe('a consumer killed with SIGKILL mid-stream', () => {
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  const processes: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db, { consumer: { batchCommandsMax: 500 } });
    kafka = testKafka(config);
    await createTestTopics(kafka, config);
  });
  afterAll(async () => {
    for (const p of processes) await p.kill('SIGKILL');
    await db?.drop();
  });

  it('is restarted and every command has exactly one effect', async () => {
    const run = uniqueSuffix();
    const commands = commandStream(run);
    await publish(kafka, config.topics.commands, commands);

    const first = spawnService('src/consumer/main.ts', envFor(config));
    processes.push(first);
    await eventually(
      async () => ((await countCommands(db)) >= 2_000 ? true : undefined),
      90_000,
      'the first consumer to apply 2,000 commands',
    );
    await first.kill('SIGKILL');
    const appliedAtKill = await countCommands(db);
    expect(appliedAtKill).toBeLessThan(COMMANDS);

    const second = spawnService('src/consumer/main.ts', envFor(config));
    processes.push(second);
    expect(
      await missingAfter(
        db.pool,
        commands.map((c) => c.id),
        120_000,
      ),
      'commands never decided',
    ).toEqual([]);
    await waitForSettles(db.pool);
    // The kill can fall between a transfer's commit and its settle's publish: the redelivered
    // transfer publishes the settle again, and the settle still takes effect exactly once.
    const settles = await settlesPerTransfer(db.pool);
    expect(settles.transfers).toBeGreaterThan(0);
    expect(settles).toEqual({ transfers: settles.transfers, settles: settles.transfers, unmatched: 0 });
    await second.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    // Exactly one effect each, counted per command id in postings and history.
    expect(await effectsOutOfShape(db.pool)).toEqual([]);
    const deposits = commands.filter((c) => c.type === 'deposit').length;
    const { rows } = await db.pool.query<{ applied: string; withdrawals: string; external: string }>(`
      SELECT (SELECT count(*) FROM commands WHERE type = 'deposit' AND status = 'applied') AS applied,
             (SELECT count(*) FROM commands WHERE type = 'withdraw' AND status = 'applied') AS withdrawals,
             (SELECT sum(balance) FROM accounts WHERE kind = 'external') AS external`);
    expect(Number(rows[0]!.applied)).toBe(deposits);
    // Money in the ledger = 10.00 per deposit - 2.00 per applied withdrawal, however often the stream was redelivered.
    expect(-BigInt(rows[0]!.external)).toBe(BigInt(deposits) * 1000n - BigInt(rows[0]!.withdrawals) * 200n);
    expect(await verifyLedger(db.pool)).toEqual([]);

    // Balance events: a redelivered chunk sends its stored events again, so copies are the same
    // bytes, and every user's sequences run 1..(their applied commands) without a gap.
    const applied = await db.pool.query<{ user_id: string; n: string }>(
      // Alert commands move no money and make no balance event.
      "SELECT user_id, count(*) AS n FROM commands WHERE status = 'applied' AND type NOT IN ('set_alert', 'remove_alert') GROUP BY user_id",
    );
    const appliedByUser = new Map(applied.rows.map((r) => [Number(r.user_id), Number(r.n)]));
    const total = [...appliedByUser.values()].reduce((a, b) => a + b, 0);
    // Every balance event and every alert event stored, each copy identical (eventProblems).
    const storedAlerts = Number(
      (await db.pool.query<{ n: string }>('SELECT count(*) AS n FROM balance_events WHERE part > 0')).rows[0]!.n,
    );
    const events = await readEvents(
      kafka,
      config.topics.events,
      (seen) => new Set(seen.map((e) => e.event.event_id)).size >= total + storedAlerts,
      60_000,
    );
    expect(eventProblems(events, appliedByUser)).toEqual([]);
    // The alerts fired exactly where the users' available balances, as their balance events
    // show them, crossed above ALERT_ABOVE, however often the chunks were redelivered.
    const fired = new Set(events.filter((e) => e.event.type === 'threshold_crossed').map((e) => e.event.event_id));
    expect(fired).toEqual(expectedCrossings(events, run));
    expect(fired.size).toBeGreaterThanOrEqual(USERS);
  }, 420_000);
});
