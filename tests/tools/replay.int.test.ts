import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { createCommandWorker } from '../../src/consumer/worker.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { reconcile } from '../../src/tools/reconcile.ts';
import { parseFrom, parseTo, replay } from '../../src/tools/replay.ts';
import { mixedCommands } from '../../bench/workloads.ts';
import { publish, waitForSettles } from '../helpers/commands.ts';
import { envFor, spawnService } from '../helpers/processes.ts';
import {
  countCommands,
  createTestDatabase,
  createTestTopics,
  eventually,
  testConfig,
  testKafka,
  testLog,
  uniqueSuffix,
  type TestDatabase,
} from '../helpers/stack.ts';

const MIXED = 15_000;

/**
 * Refunds (partial, and one past the capture), freezes (a withdrawal stopped, a deposit let
 * through, then half of the accounts unfrozen) and deposits with a provider's reference (the
 * second delivery refused), on users the mixed stream does not use.
 */
function marketplaceCommands(): Array<{ raw: string; key: string }> {
  const commands: Array<Record<string, unknown>> = [];
  for (let user = 1001; user <= 1012; user += 1) {
    const order = { user_id: user, service_id: 1 + (user % 3), order_id: user };
    const id = (step: string) => `market-${user}-${step}`;
    commands.push(
      { id: id('deposit'), type: 'deposit', user_id: user, amount: '100.00' },
      { id: id('reserve'), type: 'reserve', ...order, amount: '40.00' },
      { id: id('capture'), type: 'capture', ...order, amount: '30.00' },
      { id: id('refund-1'), type: 'refund', ...order, amount: '10.00' },
      { id: id('refund-2'), type: 'refund', ...order, amount: '25.00' },
      {
        id: id('split'),
        type: 'transfer',
        user_id: user,
        recipients: [
          { recipient_id: 1001 + ((user - 1001 + 1) % 12), amount: '5.00' },
          { recipient_id: 1001 + ((user - 1001 + 2) % 12), amount: '3.00', comment: 'fee' },
        ],
      },
      { id: id('freeze'), type: 'freeze', user_id: user, reason: `review ${user}` },
      { id: id('withdraw-1'), type: 'withdraw', user_id: user, amount: '1.00' },
      // Paid through service 7 with the provider's reference, then its webhook again: refused.
      {
        id: id('deposit-2'),
        type: 'deposit',
        user_id: user,
        amount: '1.00',
        service_id: 7,
        external_ref: `pi_${user}`,
      },
      {
        id: id('deposit-3'),
        type: 'deposit',
        user_id: user,
        amount: '1.00',
        service_id: 7,
        external_ref: `pi_${user}`,
      },
    );
    if (user % 2 === 0)
      commands.push(
        { id: id('unfreeze'), type: 'unfreeze', user_id: user },
        { id: id('withdraw-2'), type: 'withdraw', user_id: user, amount: '1.00' },
      );
  }
  return commands.map((c) => ({ raw: JSON.stringify(c), key: String(c.user_id) }));
}
const MARKETPLACE = marketplaceCommands();
const COMMANDS = MIXED + MARKETPLACE.length;

describe('replay and reconcile', () => {
  let live: TestDatabase;
  const others: TestDatabase[] = [];
  let config: Config;
  let kafka: Kafka;
  let settlesExpected = 0;
  let logged = 0;

  beforeAll(async () => {
    live = await createTestDatabase();
    config = testConfig(live);
    kafka = testKafka(config);
    await createTestTopics(kafka, config);
    // Few users, so most recipients also spend: their decisions must not depend on how the
    // live consumer happened to interleave partitions, or the rebuild below would differ.
    const messages = mixedCommands(MIXED, 300, Number.parseInt(uniqueSuffix(), 16));
    await publish(kafka, config.topics.commands, [
      ...messages.map((m) => ({ raw: m.value, key: m.key })),
      ...MARKETPLACE,
      { raw: 'not json', key: '1' },
    ]);
    const worker = createCommandWorker({ config, kafka, pool: live.pool, log: testLog });
    await worker.start();
    await eventually(
      async () => ((await countCommands(live)) >= COMMANDS ? true : undefined),
      120_000,
      'the live consumer',
    );
    await waitForSettles(live.pool);
    // One settle per leg: a transfer to one recipient has one, a split payment one per recipient.
    settlesExpected = (
      await live.pool.query(
        "SELECT count(*)::int AS n FROM commands c JOIN transactions t ON t.command_id = c.id AND t.transaction_type = 'transfer_in' WHERE c.type = 'transfer' AND c.status = 'applied'",
      )
    ).rows[0].n;
    expect(settlesExpected).toBeGreaterThan(COMMANDS / 20);
    await worker.stop();
    // The refunds and freezes decided as their rules say, so the rebuild has them to match.
    const marketplace = await live.pool.query(
      "SELECT type, code, count(*)::int AS n FROM commands WHERE id LIKE 'market-%' GROUP BY type, code ORDER BY type, code",
    );
    expect(marketplace.rows).toEqual([
      { type: 'capture', code: 'ok', n: 12 },
      { type: 'deposit', code: 'external_ref_reused', n: 12 },
      { type: 'deposit', code: 'ok', n: 24 },
      { type: 'freeze', code: 'ok', n: 12 },
      { type: 'refund', code: 'ok', n: 12 },
      { type: 'refund', code: 'refund_exceeds_capture', n: 12 },
      { type: 'reserve', code: 'ok', n: 12 },
      { type: 'transfer', code: 'ok', n: 12 },
      { type: 'unfreeze', code: 'ok', n: 6 },
      { type: 'withdraw', code: 'account_frozen', n: 12 },
      { type: 'withdraw', code: 'ok', n: 6 },
    ]);
    // Everything the log now holds: the commands, the bad message, one settle per applied
    // transfer, and the limits record the consumer wrote on each partition it found without one.
    const recorded = await live.pool.query('SELECT count(*)::int AS n FROM decision_limits');
    expect(recorded.rows[0].n).toBe(config.topics.commandPartitions);
    logged = COMMANDS + 1 + settlesExpected + config.topics.commandPartitions;
  });
  afterAll(async () => {
    for (const db of others) await db.drop();
    await live?.drop();
  });

  async function freshDatabase() {
    const db = await createTestDatabase();
    others.push(db);
    return db;
  }

  it('rebuilds from the log alone a ledger identical to the live one', async () => {
    const rebuilt = await freshDatabase();
    const report = await replay({
      kafka,
      pool: rebuilt.pool,
      config,
      log: testLog,
      from: parseFrom('earliest'),
      to: parseTo('latest'),
      group: `replay-${uniqueSuffix()}`,
      dryRun: false,
    });
    expect(report).toMatchObject({
      processed: logged,
      total: logged,
      duplicates: 0,
      deadLettered: 1,
      settled: settlesExpected,
      resumed: false,
    });
    expect(report.applied + report.rejected).toBe(COMMANDS);
    const rejections = `SELECT id, code FROM commands WHERE status = 'rejected' ORDER BY id`;
    expect((await rebuilt.pool.query(rejections)).rows).toEqual((await live.pool.query(rejections)).rows);
    expect(await reconcile(live.pool, rebuilt.pool)).toEqual([]);
    expect(await verifyLedger(rebuilt.pool)).toEqual([]);
    // The history chains depend on the log alone: every link is the same hash.
    const links = `SELECT user_id, sequence, encode(hash, 'hex') AS hash FROM balance_events WHERE part = 0 ORDER BY 1, 2`;
    const liveLinks = (await live.pool.query(links)).rows;
    expect(liveLinks.length).toBeGreaterThan(COMMANDS / 2);
    expect((await rebuilt.pool.query(links)).rows).toEqual(liveLinks);
  });

  it('changes nothing when replayed into the live database', async () => {
    const before = (await live.pool.query('SELECT id, balance FROM accounts ORDER BY id')).rows;
    const report = await replay({
      kafka,
      pool: live.pool,
      config,
      log: testLog,
      from: parseFrom('earliest'),
      to: parseTo('latest'),
      group: `replay-${uniqueSuffix()}`,
      dryRun: false,
    });
    expect(report).toMatchObject({
      applied: 0,
      settled: 0,
      rejected: 0,
      duplicates: COMMANDS + settlesExpected,
      deadLettered: 1,
    });
    expect((await live.pool.query('SELECT id, balance FROM accounts ORDER BY id')).rows).toEqual(before);
  });

  it('reports without writing in a dry run', async () => {
    const empty = await freshDatabase();
    const report = await replay({
      kafka,
      pool: empty.pool,
      config,
      log: testLog,
      from: parseFrom('earliest'),
      to: parseTo('latest'),
      group: `dry-${uniqueSuffix()}`,
      dryRun: true,
    });
    expect(report).toMatchObject({
      applied: COMMANDS,
      settled: settlesExpected,
      duplicates: 0,
      deadLettered: 1,
      dryRun: true,
    });
    expect((await empty.pool.query('SELECT count(*)::int AS n FROM commands')).rows[0].n).toBe(0);
  });

  it('finishes correctly when killed halfway and started again with the same group', async () => {
    const target = await freshDatabase();
    const group = `replay-killed-${uniqueSuffix()}`;
    const env = { ...envFor(config), BATCH_COMMANDS_MAX: '250' };
    const args = ['--into', target.url, '--group', group];
    const first = spawnService('src/tools/replay-cli.ts', env, args);
    let second: ReturnType<typeof spawnService> | null = null;
    try {
      await eventually(
        async () => ((await countCommands(target)) >= COMMANDS / 3 ? true : undefined),
        120_000,
        'a third of the replay',
      );
      await first.kill('SIGKILL');
      expect(await countCommands(target)).toBeLessThan(COMMANDS);
      second = spawnService('src/tools/replay-cli.ts', env, args);
      expect(await second.exited, second.output()).toBe(0);
      expect(second.output()).toContain('"resumed": true');
      expect(await reconcile(live.pool, target.pool)).toEqual([]);
    } finally {
      // A failed or interrupted test must not leave a replay running.
      await first.kill('SIGKILL');
      await second?.kill('SIGKILL');
    }
  });

  it('reports every difference between two ledgers', async () => {
    const other = await freshDatabase();
    await other.pool.query("INSERT INTO accounts (kind, owner_id, balance) VALUES ('revenue', 99, 5)");
    await other.pool.query(
      `INSERT INTO accounts (kind, owner_id, version, chain_hash) VALUES ('user_available', 987654, 3, decode(repeat('ab', 32), 'hex'))`,
    );
    await other.pool.query(
      "INSERT INTO balance_alerts (id, user_id, direction, threshold, past) VALUES ('a-1', 987654, 'below', 500, true)",
    );
    const differences = await reconcile(live.pool, other.pool);
    expect(differences).toContainEqual({ what: 'account balance', key: 'revenue:99', a: '0', b: '5' });
    expect(differences).toContainEqual({ what: 'balance version', key: 'user 987654', a: '0', b: '3' });
    expect(differences).toContainEqual({
      what: 'history chain head',
      key: 'user 987654',
      a: 'none',
      b: 'ab'.repeat(32),
    });
    expect(differences).toContainEqual({
      what: 'threshold alert',
      key: 'a-1',
      a: 'none',
      b: 'user 987654 below 500 past=true',
    });
    expect(differences.length).toBeGreaterThan(1);
  });
});
