/**
 * No row that every partition waits on: the external and revenue accounts are striped by
 * partition, so a chunk of one partition never waits for a lock another partition's chunk holds
 * until it commits. Checked with real PostgreSQL locks: one partition's transaction is held open
 * after writing its balances, and the others must get through under a short lock_timeout.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandFingerprint, consumerCommandSchema } from '../../src/commands/schema.ts';
import { applyBatch, applyCommands, type BatchItem } from '../../src/ledger/apply-batch.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { reconcile } from '../../src/tools/reconcile.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/stack.ts';

const LIMITS = { amountMinorMax: 100_000_000_000n, balanceMinorMax: 1_000_000_000_000_000n, alertsPerUserMax: 20 };
const PARTITIONS = 6;
const schema = consumerCommandSchema();
let sequence = 0;

function item(partition: number, input: Record<string, unknown>): BatchItem {
  const command = schema.parse({ id: `stripe-${partition}-${++sequence}`, ...input });
  return { command, fingerprint: commandFingerprint(command), partition, offset: String(sequence), principal: 'test' };
}

/** A chunk of partition p that touches the shared kinds: a deposit, a withdraw, a capture to service 7. */
function chunk(partition: number): BatchItem[] {
  const user = 100 + partition;
  return [
    item(partition, { type: 'deposit', user_id: user, amount: '10.00' }),
    item(partition, { type: 'withdraw', user_id: user, amount: '1.00' }),
    item(partition, { type: 'reserve', user_id: user, service_id: 7, order_id: partition + 1, amount: '2.00' }),
    item(partition, { type: 'capture', user_id: user, service_id: 7, order_id: partition + 1, amount: '2.00' }),
  ];
}

describe('striped external and revenue accounts', () => {
  let db: TestDatabase;
  let impatient: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase();
    // Any wait on a row lock fails fast instead of waiting for the holder's commit.
    impatient = new pg.Pool({ connectionString: db.url, max: PARTITIONS, options: '-c lock_timeout=1500' });
    // As createPool does: the database is dropped WITH (FORCE) right after this pool ends, and a
    // connection still closing then gets FATAL 57P01, an uncaught error without these.
    impatient.on('error', () => {});
    impatient.on('remove', (client) => client.on('error', () => {}));
  });
  afterAll(async () => {
    await impatient?.end();
    await db?.drop();
  });

  it('lets every other partition apply deposits, withdrawals and captures while one holds its chunk open', async () => {
    const holder = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await applyBatch(holder, chunk(0), LIMITS);
      // Partition 0 now holds its stripes of the external and revenue accounts until it commits.
      const others = await Promise.allSettled(
        Array.from({ length: PARTITIONS - 1 }, (_, i) => applyCommands(impatient, chunk(i + 1), LIMITS)),
      );
      const refused = others
        .filter((o) => o.status === 'rejected')
        .map((o) => String((o as PromiseRejectedResult).reason));
      expect(refused).toEqual([]);
      // Another user's deposit on the same partition shares only the external stripe with the
      // open chunk, and does wait: the check sees a wait when there is one.
      const samePartition = [item(0, { type: 'deposit', user_id: 200, amount: '1.00' })];
      await expect(applyCommands(impatient, samePartition, LIMITS)).rejects.toMatchObject({ code: '55P03' });
      await holder.query('COMMIT');
    } finally {
      holder.release();
    }
    const stripes = await db.pool.query<{ kind: string; stripes: number; total: string }>(
      "SELECT kind, count(*)::int AS stripes, sum(balance)::text AS total FROM accounts WHERE kind IN ('external', 'revenue') GROUP BY kind ORDER BY kind",
    );
    // Six partitions: stripe 0 of the external account existed before, the others were made by their partitions.
    expect(stripes.rows).toEqual([
      { kind: 'external', stripes: PARTITIONS, total: String(-PARTITIONS * (1000 - 100)) },
      { kind: 'revenue', stripes: PARTITIONS, total: String(PARTITIONS * 200) },
    ]);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('reconciles by the sums over stripes: the same totals in other stripes are the same ledger', async () => {
    const other = await createTestDatabase();
    try {
      // The same commands, all applied as partition 0 (as a ledger before striping held them).
      const unstriped = Array.from({ length: PARTITIONS }, (_, p) => chunk(p)).flat();
      for (const input of unstriped) {
        const { command } = input;
        await applyCommands(
          other.pool,
          [{ ...input, command: { ...command, id: command.id.replace('stripe-', 'x-') }, partition: 0 }],
          LIMITS,
        );
      }
      const totals = (pool: pg.Pool) =>
        pool.query(
          "SELECT kind, sum(balance)::text AS total FROM accounts WHERE kind IN ('external', 'revenue') GROUP BY kind ORDER BY kind",
        );
      expect((await totals(other.pool)).rows).toEqual((await totals(db.pool)).rows);
      // The copy's command ids differ, and a history chain covers its command ids: only its heads may differ.
      const differences = await reconcile(db.pool, other.pool);
      expect(differences.filter((d) => d.what !== 'history chain head')).toEqual([]);
      expect(differences.length).toBeGreaterThan(0);
    } finally {
      await other.drop();
    }
  });

  // After the reconcile above, which compares this database with a copy of its first commands.
  it("refunds a capture from another partition's stripe (partitions were added): the stripe goes below zero, the service's revenue does not", async () => {
    const user = 300;
    await applyCommands(
      db.pool,
      [
        item(1, { type: 'deposit', user_id: user, amount: '5.00' }),
        item(1, { type: 'reserve', user_id: user, service_id: 8, order_id: 1, amount: '5.00' }),
        item(1, { type: 'capture', user_id: user, service_id: 8, order_id: 1, amount: '5.00' }),
      ],
      LIMITS,
    );
    const result = await applyCommands(
      db.pool,
      [item(4, { type: 'refund', user_id: user, service_id: 8, order_id: 1, amount: '5.00' })],
      LIMITS,
    );
    expect(result.result.replies.map((r) => r.code)).toEqual(['ok']);
    const stripes = await db.pool.query(
      "SELECT stripe, balance::text FROM accounts WHERE kind = 'revenue' AND owner_id = 8 ORDER BY stripe",
    );
    expect(stripes.rows).toEqual([
      { stripe: 1, balance: '500' },
      { stripe: 4, balance: '-500' },
    ]);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });
});
