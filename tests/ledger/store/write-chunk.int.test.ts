/**
 * `ledger_write_chunk` (sql/functions/ledger_write_chunk.sql) against real PostgreSQL: one call writes every
 * row a chunk decided, allocates history ids in the order given, refuses to close a reservation
 * that is not open (and then writes nothing), and locks the shared accounts it adds to in
 * ascending id order, the order every chunk uses, so two chunks never deadlock on them.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChunkWrite } from '../../../src/ledger/store/index.ts';
import { writeChunk } from '../../../src/ledger/store/index.ts';
import { inTransaction } from '../../../src/db/pool.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/stack.ts';

const EMPTY: ChunkWrite = {
  commands: [],
  postings: [],
  transactions: [],
  reservations: [],
  alerts: { upserts: [], deletes: [], counts: new Map() },
  balances: [],
  events: [],
  partition: 0,
};

describe('ledger_write_chunk', () => {
  let db: TestDatabase;
  let ids: Record<string, number>;

  beforeAll(async () => {
    db = await createTestDatabase();
    const { rows } = await db.pool.query<{ id: string; name: string }>(
      `INSERT INTO accounts (kind, owner_id) VALUES
         ('user_available', 1), ('user_reserved', 1), ('user_incoming', 2), ('user_incoming', 3)
       ON CONFLICT DO NOTHING
       RETURNING id, kind || ':' || owner_id AS name`,
    );
    const external = await db.pool.query<{ id: string }>(
      "SELECT id FROM accounts WHERE kind = 'external' AND stripe = 0",
    );
    ids = Object.fromEntries(rows.map((r) => [r.name, Number(r.id)]));
    ids.external = Number(external.rows[0]!.id);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('writes commands, postings, history with ids in order, a reservation, an alert, balances and events in one call', async () => {
    const payload = '{"event":"balance_changed","note":"kept \\u00e9 byte for byte"}';
    const written = await inTransaction(db.pool, (client) =>
      writeChunk(client, {
        ...EMPTY,
        commands: [
          {
            id: 'w-1',
            fingerprint: 'f1',
            type: 'deposit',
            userId: 1,
            status: 'applied',
            code: 'ok',
            message: '',
            partition: 0,
            offset: '5',
            principal: 'service:9',
          },
        ],
        postings: [
          {
            commandId: 'w-1',
            debitAccountId: ids.external!,
            creditAccountId: ids['user_available:1']!,
            amount: 500n,
            debitBalanceAfter: null,
            creditBalanceAfter: 500n,
            versionAfter: 1n,
          },
        ],
        transactions: [
          {
            commandId: 'w-1',
            userId: 1,
            amount: 500n,
            type: 'deposit',
            serviceId: null,
            orderId: null,
            counterpartyId: null,
            comment: 'a',
          },
          {
            commandId: 'w-1',
            userId: 1,
            amount: 1n,
            type: 'deposit',
            serviceId: null,
            orderId: null,
            counterpartyId: null,
            comment: 'b',
          },
        ],
        reservations: [
          {
            id: null,
            userId: 1,
            serviceId: 7,
            orderId: 70,
            amount: 100n,
            expiresInS: 60,
            status: 'open',
            capturedAmount: 0n,
            reserveCommandId: 'w-1',
            closeCommandId: null,
          },
        ],
        alerts: {
          upserts: [{ id: 'alert-1', userId: 1, direction: 'below', threshold: 10n, past: false }],
          deletes: [],
          counts: new Map([[1, 1]]),
        },
        balances: [
          { id: ids['user_available:1']!, key: 'user_available:1', balance: 500n, delta: 500n, version: 1n },
          { id: ids.external!, key: 'external:0', balance: -500n, delta: -500n },
        ],
        events: [{ userId: 1, sequence: 1n, part: 0, commandId: 'w-1', payload }],
      }),
    );
    expect(written.transactionIds).toHaveLength(2);
    expect(written.transactionIds[1]).toBeGreaterThan(written.transactionIds[0]!);
    const history = await db.pool.query(
      "SELECT id::int, comment, created_at FROM transactions WHERE command_id = 'w-1' ORDER BY id",
    );
    expect(history.rows.map((r) => [r.id, r.comment])).toEqual([
      [written.transactionIds[0], 'a'],
      [written.transactionIds[1], 'b'],
    ]);
    expect(history.rows[0].created_at.getTime()).toBe(written.writtenAt.getTime());
    const state = await db.pool.query(`
      SELECT (SELECT count(*)::int FROM commands WHERE id = 'w-1') AS commands,
             (SELECT count(*)::int FROM postings WHERE command_id = 'w-1') AS postings,
             (SELECT status FROM reservations WHERE reserve_command_id = 'w-1') AS reservation,
             (SELECT alert_count FROM accounts WHERE kind = 'user_available' AND owner_id = 1) AS alert_count,
             (SELECT balance::text || '/' || version::text FROM accounts WHERE kind = 'user_available' AND owner_id = 1) AS available,
             (SELECT balance::text FROM accounts WHERE id = ${ids.external}) AS external,
             (SELECT payload FROM balance_events WHERE command_id = 'w-1') AS payload`);
    expect(state.rows[0]).toEqual({
      commands: 1,
      postings: 1,
      reservation: 'open',
      alert_count: 1,
      available: '500/1',
      external: '-500',
      payload,
    });
  });

  it('refuses to close a reservation that is not open, and then writes nothing of the chunk', async () => {
    const before = await db.pool.query("SELECT count(*)::int AS n FROM commands WHERE id = 'w-2'");
    const closing = inTransaction(db.pool, (client) =>
      writeChunk(client, {
        ...EMPTY,
        commands: [
          {
            id: 'w-2',
            fingerprint: 'f2',
            type: 'capture',
            userId: 1,
            status: 'applied',
            code: 'ok',
            message: '',
            partition: 0,
            offset: '6',
            principal: 'service:9',
          },
        ],
        reservations: [
          {
            id: 999_999,
            userId: 1,
            serviceId: 7,
            orderId: 71,
            amount: 100n,
            expiresInS: null,
            status: 'captured',
            capturedAmount: 100n,
            reserveCommandId: 'x',
            closeCommandId: 'w-2',
          },
        ],
      }),
    );
    await expect(closing).rejects.toThrow(/closed 0 of 1 reservations/);
    const after = await db.pool.query("SELECT count(*)::int AS n FROM commands WHERE id = 'w-2'");
    expect([before.rows[0].n, after.rows[0].n]).toEqual([0, 0]);
  });

  it('locks the shared accounts it adds to in ascending id order, whatever order they come in', async () => {
    const low = Math.min(ids['user_incoming:2']!, ids['user_incoming:3']!);
    const high = Math.max(ids['user_incoming:2']!, ids['user_incoming:3']!);
    const holder = await db.pool.connect();
    const other = new pg.Client({ connectionString: db.url, options: '-c lock_timeout=1000' });
    await other.connect();
    const writer = await db.pool.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [high]);
      await writer.query('BEGIN');
      // Given high first: a write that locked in the given order would wait on `high` holding nothing.
      const writing = writeChunk(writer, {
        ...EMPTY,
        balances: [
          { id: high, key: 'user_incoming:3', balance: 0n, delta: 1n },
          { id: low, key: 'user_incoming:2', balance: 0n, delta: 1n },
        ],
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      // The writer holds `low` while it waits for `high`: another transaction cannot take `low`.
      await other.query('BEGIN');
      const lowTaken = await other
        .query('SELECT id FROM accounts WHERE id = $1 FOR NO KEY UPDATE', [low])
        .then(() => 'taken')
        .catch((error: { code?: string }) => error.code);
      await other.query('ROLLBACK');
      expect(lowTaken).toBe('55P03');
      await holder.query('COMMIT');
      await writing;
      await writer.query('ROLLBACK');
    } finally {
      holder.release();
      writer.release();
      await other.end();
    }
  });
});
