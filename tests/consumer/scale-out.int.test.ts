import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import type { CommandInput } from '../../src/commands/schema.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { effectsOutOfShape, missingAfter, publish, settlesPerTransfer, waitForSettles } from '../helpers/commands.ts';
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

const COMMANDS = 50_000;
const USERS = 2_000;
const WITHDRAWAL_MINOR = 200n;

/** Every user's own commands carry `seq:<n>` in their comment, numbered in publish order. */
function stream(run: string): CommandInput[] {
  const seq = new Map<number, number>();
  const commands: CommandInput[] = [];
  for (let i = 0; i < COMMANDS; i += 1) {
    const user = 1 + ((i * 7919) % USERS);
    const n = (seq.get(user) ?? 0) + 1;
    seq.set(user, n);
    const base = { id: `${run}-${i}`, user_id: user, comment: `seq:${n}` };
    if (n === 1 || i % 4 === 0) commands.push({ ...base, type: 'deposit', amount: '20.00' });
    else if (i % 4 === 1)
      commands.push({ ...base, type: 'transfer', recipient_id: 1 + ((user + 997) % USERS), amount: '3.00' });
    else commands.push({ ...base, type: 'withdraw', amount: '2.00' });
  }
  return commands;
}

describe('a consumer group of several processes', () => {
  let db: TestDatabase;
  let config: Config;
  let kafka: Kafka;
  const processes: ServiceProcess[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db, { topics: { commandPartitions: 6 } });
    kafka = testKafka(config);
    await createTestTopics(kafka, config);
  });
  afterAll(async () => {
    for (const p of processes) await p.kill('SIGKILL');
    await db?.drop();
  });

  it('loses and doubles nothing when one member is killed and another joins, and keeps per-user order', async () => {
    const commands = stream(uniqueSuffix());
    const env = envFor(config);
    processes.push(spawnService('src/consumer/main.ts', env), spawnService('src/consumer/main.ts', env));
    await publish(kafka, config.topics.commands, commands);
    await eventually(
      async () => ((await countCommands(db)) >= COMMANDS / 4 ? true : undefined),
      120_000,
      'a quarter of the commands',
    );
    await processes[0]!.kill('SIGKILL');
    processes.push(spawnService('src/consumer/main.ts', env));
    expect(
      await missingAfter(
        db.pool,
        commands.map((c) => c.id),
        240_000,
      ),
      'commands never decided',
    ).toEqual([]);
    await waitForSettles(db.pool);
    const settles = await settlesPerTransfer(db.pool);
    expect(settles.transfers).toBeGreaterThan(0);
    expect(settles).toEqual({ transfers: settles.transfers, settles: settles.transfers, unmatched: 0 });

    // Exactly one effect each, counted per command id in postings and history.
    expect(await effectsOutOfShape(db.pool)).toEqual([]);
    const deposits = commands.filter((c) => c.type === 'deposit').length;
    const { rows } = await db.pool.query<{ deposits: number; withdrawals: number; external: string }>(
      "SELECT (SELECT count(*)::int FROM commands WHERE type = 'deposit' AND status = 'applied') AS deposits, (SELECT count(*)::int FROM commands WHERE type = 'withdraw' AND status = 'applied') AS withdrawals, (SELECT sum(balance) FROM accounts WHERE kind = 'external') AS external",
    );
    expect(rows[0]!.deposits).toBe(deposits);
    expect(-BigInt(rows[0]!.external)).toBe(
      BigInt(deposits) * 2_000n - BigInt(rows[0]!.withdrawals) * WITHDRAWAL_MINOR,
    );
    expect(await verifyLedger(db.pool)).toEqual([]);

    // Per-user order: each user's own commands took effect in the order they were published.
    const outOfOrder = await db.pool.query(`
      SELECT user_id FROM (
        SELECT user_id, split_part(comment, ':', 2)::int AS seq,
               lag(split_part(comment, ':', 2)::int) OVER (PARTITION BY user_id ORDER BY id) AS previous
        FROM transactions WHERE transaction_type IN ('deposit', 'withdraw', 'transfer_out')
      ) t WHERE previous IS NOT NULL AND seq <= previous LIMIT 5`);
    expect(outOfOrder.rows).toEqual([]);
    for (const p of processes.slice(1)) expect(await p.kill('SIGTERM')).toBe(0);
  }, 480_000);
});
