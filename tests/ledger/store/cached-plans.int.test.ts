/**
 * The chunk functions keep their plans for the life of a connection (sql/0021_cached_chunk_plans.sql).
 * A kept plan must stay a probe by key when the tables it was made on grow. So this test makes
 * the plans while the tables hold a handful of rows, just analyzed. Then it adds thousands of rows
 * that nobody analyzes, as with autovacuum off. On the same connection, it counts the rows one
 * chunk's load and write read from each table.
 */
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commitChunk, loadChunk } from '../../../src/ledger/store/index.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/stack.ts';

const FILL_ROWS = 3_000;
/** Rows one chunk of one user may read from a table by its keys; a scan would read ~FILL_ROWS. */
const CHUNK_ROWS_READ_MAX = 50;
const TABLES = ['accounts', 'commands', 'reservations', 'balance_alerts'];

/**
 * What this backend has read from each table so far. The counts are the backend's pending
 * statistics, which it reports only between transactions, so inside one they only grow.
 */
async function tableReads(client: pg.PoolClient) {
  const { rows } = await client.query<{ relname: string; seq_scan: number; idx_tup_fetch: number }>(
    `SELECT relname, seq_scan::int, idx_tup_fetch::int FROM pg_stat_xact_user_tables WHERE relname = ANY($1)`,
    [TABLES],
  );
  return new Map(rows.map((r) => [r.relname, { seqScans: r.seq_scan, rowsByIndex: r.idx_tup_fetch }]));
}

/**
 * One chunk of user 1, rolled back: it loads, then releases the seeded hold, opens another,
 * deposits and alerts. Returns the scans and rows it read per table.
 */
async function chunkReads(client: pg.PoolClient, n: number) {
  await client.query('BEGIN');
  try {
    const before = await tableReads(client);
    const loaded = await loadChunk(client, {
      commandIds: [`chunk-${n}`, 'seed-command'],
      accounts: ['user_available:1', 'user_reserved:1', 'external:0'],
      stripe: 2,
      orders: [{ userId: 1, serviceId: 7, orderId: 1 }],
    });
    const available = loaded.accounts.get('user_available:1')!;
    const external = loaded.accounts.get('external:0')!;
    const held = loaded.reservations.open[0]!;
    const commandId = `chunk-${n}`;
    await commitChunk(client, {
      fence: null,
      commands: [
        {
          id: commandId,
          fingerprint: 'f',
          type: 'deposit',
          userId: 1,
          status: 'applied',
          code: 'ok',
          message: '',
          partition: 2,
          offset: String(n),
          principal: 'service:7',
        },
      ],
      postings: [
        {
          commandId,
          debitAccountId: external.id,
          creditAccountId: available.id,
          amount: 100n,
          debitBalanceAfter: null,
          creditBalanceAfter: 100n,
          versionAfter: 1n,
        },
      ],
      transactions: [
        {
          commandId,
          userId: 1,
          amount: 100n,
          type: 'deposit',
          serviceId: null,
          orderId: null,
          counterpartyId: null,
          comment: null,
        },
      ],
      reservations: [
        { ...held, status: 'released', closeCommandId: commandId },
        { ...held, id: null, orderId: 2, reserveCommandId: commandId },
      ],
      alerts: {
        upserts: [{ id: 'alert-1', userId: 1, direction: 'below', threshold: 10n, past: false }],
        deletes: ['alert-gone'],
        counts: new Map([[available.id, 1]]),
      },
      refunds: [],
      freezes: { accounts: [], changes: [] },
      externalPayments: [],
      userAccounts: [
        {
          id: available.id,
          key: 'user_available:1',
          expectedBalance: available.balance,
          expectedVersion: available.version,
          balance: 100n,
          version: 1n,
          chainHash: null,
        },
      ],
      sharedDeltas: new Map([[external.id, -100n]]),
      events: [{ userId: 1, sequence: 1n, part: 0, commandId, payload: '{}', hash: 'ab'.repeat(32) }],
      partition: 2,
      reportUserIds: [],
    });
    const after = await tableReads(client);
    return Object.fromEntries(
      TABLES.map((table) => {
        const [was, is] = [before.get(table), after.get(table)];
        return [
          table,
          {
            seqScans: (is?.seqScans ?? 0) - (was?.seqScans ?? 0),
            rowsByIndex: (is?.rowsByIndex ?? 0) - (was?.rowsByIndex ?? 0),
          },
        ];
      }),
    );
  } finally {
    await client.query('ROLLBACK');
  }
}

describe('chunk plans kept for the life of a connection', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query(`
      INSERT INTO accounts (kind, owner_id, alert_count) VALUES ('user_available', 1, 1);
      INSERT INTO commands (id, fingerprint, type, user_id, status, code, message)
        VALUES ('seed-command', 'f', 'reserve', 1, 'applied', 'ok', '');
      INSERT INTO balance_alerts (id, user_id, direction, threshold, past) VALUES ('alert-1', 1, 'below', 10, false);
      INSERT INTO reservations (user_id, service_id, order_id, amount, status, captured_amount, reserve_command_id, expires_at)
        VALUES (1, 7, 1, 300, 'open', 0, 'seed-command', now() + interval '1 hour');
      ANALYZE accounts, commands, reservations, balance_alerts`);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('still probes by key once the tables it planned on hold thousands of rows nobody analyzed', async () => {
    const client = await db.pool.connect();
    try {
      for (let n = 1; n <= 3; n++) await chunkReads(client, n);
      await db.pool.query(
        `INSERT INTO accounts (kind, owner_id, alert_count)
           SELECT 'user_available', g, 1 FROM generate_series(1000, 999 + $1::int) g;
         INSERT INTO commands (id, fingerprint, type, user_id, status, code, message)
           SELECT 'fill-' || g, 'f', 'deposit', g, 'applied', 'ok', '' FROM generate_series(1, $1::int) g;
         INSERT INTO reservations (user_id, service_id, order_id, amount, status, captured_amount, reserve_command_id, expires_at)
           SELECT 1000 + g, 7, g, 1, 'open', 0, 'fill-' || g, now() + interval '1 hour' FROM generate_series(1, $1::int) g;
         INSERT INTO balance_alerts (id, user_id, direction, threshold, past)
           SELECT 'fill-' || g, 1000 + g, 'below', 1, false FROM generate_series(1, $1::int) g`.replaceAll(
          '$1::int',
          String(FILL_ROWS),
        ),
      );
      const reads = await chunkReads(client, 4);
      // Reads are counted at all (a chunk that read nothing would pass the bound below).
      expect(reads.accounts!.rowsByIndex).toBeGreaterThan(0);
      for (const table of TABLES) {
        expect({ table, seqScans: reads[table]!.seqScans }).toEqual({ table, seqScans: 0 });
        expect(reads[table]!.rowsByIndex, table).toBeLessThanOrEqual(CHUNK_ROWS_READ_MAX);
      }
    } finally {
      client.release();
    }
  });
});
