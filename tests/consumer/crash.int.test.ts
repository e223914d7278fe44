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

/** A stream whose every deposit must apply, mixed with withdrawals and cross-user transfers. */
function commandStream(run: string): WireCommand[] {
  const commands: WireCommand[] = [];
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
             (SELECT balance FROM accounts WHERE kind = 'external') AS external`);
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
    const events = await readEvents(
      kafka,
      config.topics.events,
      (seen) => new Set(seen.map((e) => e.event.event_id)).size >= total,
      60_000,
    );
    expect(eventProblems(events, appliedByUser)).toEqual([]);
  }, 420_000);
});
