/**
 * `ledger_load_chunk` (sql/functions/ledger_load_chunk.sql) against real PostgreSQL: one call returns the
 * chunk's commands already decided, its accounts (creating missing ones), the latest
 * reservation of each order, and the alerts of its users who have some; it locks the users' rows
 * and leaves the shared ones unlocked, so partitions never wait on each other's stripes.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AccountKey } from '../../../src/ledger/core.ts';
import { loadChunk } from '../../../src/ledger/store/index.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/stack.ts';

describe('ledger_load_chunk', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query(`
      INSERT INTO accounts (kind, owner_id, alert_count) VALUES ('user_available', 1, 1), ('user_available', 3, 0);
      INSERT INTO commands (id, fingerprint, type, user_id, status, code, message)
        SELECT id, 'f', 'deposit', 1, 'applied', 'ok', '' FROM unnest('{done-1,r0,r1,r2,c0,e2}'::text[]) AS id;
      INSERT INTO balance_alerts (id, user_id, direction, threshold, past) VALUES ('a1', 1, 'below', 500, true);
      INSERT INTO balance_alerts (id, user_id, direction, threshold, past) VALUES ('a3', 3, 'above', 9, false);
      INSERT INTO reservations (user_id, service_id, order_id, amount, status, captured_amount, reserve_command_id, close_command_id, expires_at)
        VALUES (1, 7, 1, 300, 'open', 0, 'r1', NULL, now() + interval '1 hour'),
               (1, 7, 2, 100, 'captured', 100, 'r0', 'c0', now()),
               (1, 7, 2, 200, 'expired', 0, 'r2', 'e2', now())`);
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function load(client: pg.PoolClient) {
    return loadChunk(client, {
      commandIds: ['done-1', 'new-1'],
      accounts: [
        'user_available:1',
        'user_reserved:1',
        'user_available:2',
        'user_available:3',
        'external:0',
        'revenue:7',
      ],
      stripe: 4,
      orders: [
        { userId: 1, serviceId: 7, orderId: 1 },
        { userId: 1, serviceId: 7, orderId: 2 },
        { userId: 1, serviceId: 7, orderId: 3 },
      ],
    });
  }

  it('returns decided commands, every account (created if missing, stripes of the partition), reservations and alerts', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const chunk = await load(client);
      await client.query('COMMIT');
      expect([...chunk.stored.keys()]).toEqual(['done-1']);
      expect(chunk.stored.get('done-1')).toEqual({
        id: 'done-1',
        fingerprint: 'f',
        status: 'applied',
        code: 'ok',
        message: '',
      });
      expect([...chunk.accounts.keys()].sort()).toEqual(
        [
          'external:0',
          'revenue:7',
          'user_available:1',
          'user_available:2',
          'user_available:3',
          'user_reserved:1',
        ].sort(),
      );
      expect(chunk.accounts.get('user_available:1')).toMatchObject({ balance: 0n, version: 0n, alertCount: 1 });
      const stripes = await db.pool.query(
        "SELECT kind, stripe FROM accounts WHERE kind IN ('external', 'revenue') AND id = ANY($1) ORDER BY kind",
        [[chunk.accounts.get('external:0')!.id, chunk.accounts.get('revenue:7')!.id]],
      );
      expect(stripes.rows).toEqual([
        { kind: 'external', stripe: 4 },
        { kind: 'revenue', stripe: 4 },
      ]);
      expect(chunk.reservations.open.map((r) => [r.orderId, r.amount])).toEqual([[1, 300n]]);
      expect(chunk.reservations.expired).toEqual(['1:7:2']);
      // User 3 has an alert row but a count of 0: the count decides, as the write keeps them in step.
      expect(chunk.alerts).toEqual([{ id: 'a1', userId: 1, direction: 'below', threshold: 500n, past: true }]);
    } finally {
      client.release();
    }
  });

  it("locks the users' rows until the chunk ends, and not the shared ones", async () => {
    const holder = await db.pool.connect();
    const other = new pg.Client({ connectionString: db.url, options: '-c lock_timeout=500' });
    await other.connect();
    try {
      await holder.query('BEGIN');
      const chunk = await load(holder);
      const tryLock = (id: number) =>
        other
          .query('SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [id])
          .then(() => 'free')
          .catch((error: { code?: string }) => error.code);
      await other.query('BEGIN');
      const user = await tryLock(chunk.accounts.get('user_available:2')!.id);
      await other.query('ROLLBACK');
      await other.query('BEGIN');
      const external = await tryLock(chunk.accounts.get('external:0')!.id);
      await other.query('ROLLBACK');
      expect({ user, external }).toEqual({ user: '55P03', external: 'free' });
      await holder.query('ROLLBACK');
    } finally {
      holder.release();
      await other.end();
    }
  });

  it("locks the users' rows in ascending id order, so chunks that meet on them never deadlock", async () => {
    const ids = await db.pool.query<{ id: string; owner_id: string }>(
      "SELECT id, owner_id FROM accounts WHERE kind = 'user_available' AND owner_id IN (1, 3) ORDER BY id",
    );
    const [low, high] = ids.rows.map((r) => ({ id: Number(r.id), owner: Number(r.owner_id) }));
    const holder = await db.pool.connect();
    const loader = await db.pool.connect();
    const other = new pg.Client({ connectionString: db.url, options: '-c lock_timeout=1000' });
    await other.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [high!.id]);
      await loader.query('BEGIN');
      // Keys given high first: a load that locked in the given order would wait on `high` holding nothing.
      const loading = loadChunk(loader, {
        commandIds: [],
        accounts: [`user_available:${high!.owner}`, `user_available:${low!.owner}`],
        stripe: 0,
        orders: [],
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await other.query('BEGIN');
      const lowTaken = await other
        .query('SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [low!.id])
        .then(() => 'taken')
        .catch((error: { code?: string }) => error.code);
      await other.query('ROLLBACK');
      expect(lowTaken).toBe('55P03');
      await holder.query('COMMIT');
      await loading;
      await loader.query('ROLLBACK');
    } finally {
      holder.release();
      loader.release();
      await other.end();
    }
  });

  it("probes accounts by key even when their statistics are an empty table's, as with autovacuum off", async () => {
    const stale = await createTestDatabase();
    try {
      // Statistics taken while the table is empty, then thousands of rows nobody analyzes.
      await stale.pool.query('ANALYZE accounts');
      await stale.pool.query(`
        INSERT INTO accounts (kind, owner_id)
        SELECT kind, g FROM generate_series(1, 1500) g, unnest('{user_available,user_reserved}'::text[]) kind`);
      const client = await stale.pool.connect();
      try {
        await client.query('BEGIN');
        await loadChunk(client, {
          commandIds: ['c'],
          accounts: Array.from({ length: 10 }, (_, i) => [
            `user_available:${i + 1}`,
            `user_reserved:${i + 1}`,
          ]).flat() as AccountKey[],
          stripe: 1,
          orders: [],
        });
        const scans = await client.query(
          "SELECT seq_scan::int AS seq FROM pg_stat_xact_user_tables WHERE relname = 'accounts'",
        );
        await client.query('ROLLBACK');
        expect(scans.rows[0]?.seq ?? 0).toBe(0);
      } finally {
        client.release();
      }
    } finally {
      await stale.drop();
    }
  });
});
