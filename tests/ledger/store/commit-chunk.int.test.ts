/**
 * `ledger_commit_chunk` (sql/functions/ledger_commit_chunk.sql) against real PostgreSQL: one call
 * writes every row a chunk decided, allocates history ids in the order given, and locks the
 * shared accounts it adds to in ascending id order, the order every chunk uses, so two chunks
 * never deadlock on them. It refuses the whole write, and writes nothing, when the state it was
 * decided on is not the database's: a reservation no longer open, a partition claimed by another
 * consumer (LF001), a command decided already (LD001), a user account whose balance or version
 * moved (LS001).
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChunkCommit } from '../../../src/ledger/store/index.ts';
import { ChunkWriter } from '../../../src/ledger/chunk-writer.ts';
import { ChunkRefusedError, commitChunk, commitChunks } from '../../../src/ledger/store/index.ts';
import { inTransaction } from '../../../src/db/pool.ts';
import { createTestDatabase, type TestDatabase } from '../../helpers/stack.ts';

const EMPTY: ChunkCommit = {
  fence: null,
  commands: [],
  postings: [],
  transactions: [],
  reservations: [],
  refunds: [],
  alerts: { upserts: [], deletes: [], counts: new Map() },
  freezes: { accounts: [], changes: [] },
  externalPayments: [],
  userAccounts: [],
  sharedDeltas: new Map(),
  events: [],
  partition: 0,
  reportUserIds: [],
};

function command(id: string, type = 'deposit') {
  return {
    id,
    fingerprint: `f-${id}`,
    type,
    userId: 1,
    status: 'applied' as const,
    code: 'ok',
    message: '',
    partition: 0,
    offset: '5',
    principal: 'service:9',
  };
}

describe('ledger_commit_chunk', () => {
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
      commitChunk(client, {
        ...EMPTY,
        commands: [command('w-1')],
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
          counts: new Map([[ids['user_available:1']!, 1]]),
        },
        userAccounts: [
          {
            id: ids['user_available:1']!,
            key: 'user_available:1',
            expectedBalance: 0n,
            expectedVersion: 0n,
            balance: 500n,
            version: 1n,
            chainHash: null,
          },
        ],
        sharedDeltas: new Map([[ids.external!, -500n]]),
        events: [{ userId: 1, sequence: 1n, part: 0, commandId: 'w-1', payload, hash: 'ab'.repeat(32) }],
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
      commitChunk(client, {
        ...EMPTY,
        commands: [command('w-2', 'capture')],
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
      const writing = commitChunk(writer, {
        ...EMPTY,
        sharedDeltas: new Map([
          [high, 1n],
          [low, 1n],
        ]),
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

  /** What the database holds of the chunk's marker command and user 1's available account. */
  async function written(id: string): Promise<{ commands: number; available: string }> {
    const { rows } = await db.pool.query(
      `SELECT (SELECT count(*)::int FROM commands WHERE id = $1) AS commands,
              (SELECT balance::text || '/' || version::text FROM accounts WHERE id = $2) AS available`,
      [id, ids['user_available:1']],
    );
    return rows[0];
  }

  async function availableNow(): Promise<{ balance: bigint; version: bigint }> {
    const { rows } = await db.pool.query('SELECT balance::text, version::text FROM accounts WHERE id = $1', [
      ids['user_available:1'],
    ]);
    return { balance: BigInt(rows[0].balance), version: BigInt(rows[0].version) };
  }

  function deposit(id: string, from: { balance: bigint; version: bigint }, fence: ChunkCommit['fence']): ChunkCommit {
    return {
      ...EMPTY,
      fence,
      commands: [command(id)],
      userAccounts: [
        {
          id: ids['user_available:1']!,
          key: 'user_available:1',
          expectedBalance: from.balance,
          expectedVersion: from.version,
          balance: from.balance + 100n,
          version: from.version + 1n,
          chainHash: null,
        },
      ],
    };
  }

  it('writes nothing for a consumer whose partition another consumer claimed since (LF001)', async () => {
    const claim = async () =>
      BigInt((await db.pool.query("SELECT claim_partition('fenced.commands', 3) AS e")).rows[0].e);
    const mine = await claim();
    const fence = { topic: 'fenced.commands', partition: 3, epoch: mine };
    await commitChunk(db.pool, deposit('fence-1', await availableNow(), fence));
    expect((await written('fence-1')).commands).toBe(1);
    expect(await claim()).toBe(mine + 1n);
    const before = await availableNow();
    const refused = commitChunk(db.pool, deposit('fence-2', before, fence));
    await expect(refused).rejects.toBeInstanceOf(ChunkRefusedError);
    await expect(refused).rejects.toMatchObject({ reason: 'partition_lost' });
    expect(await written('fence-2')).toEqual({ commands: 0, available: `${before.balance}/${before.version}` });
  });

  it('refuses a chunk with a command decided already, and writes nothing of it (LD001)', async () => {
    const from = await availableNow();
    await commitChunk(db.pool, deposit('dup-1', from, null));
    const now = await availableNow();
    const again = commitChunk(db.pool, {
      ...deposit('dup-2', now, null),
      commands: [command('dup-2'), command('dup-1')],
    });
    await expect(again).rejects.toMatchObject({ reason: 'duplicate' });
    expect(await written('dup-2')).toEqual({ commands: 0, available: `${now.balance}/${now.version}` });
  });

  it('refuses a balance event without its chain link, as a consumer from before sql/0027 sends it (LC001)', async () => {
    const from = await availableNow();
    const event = { userId: 1, sequence: from.version + 1n, part: 0, commandId: 'unlinked-1', payload: '{}' };
    const unlinked = commitChunk(db.pool, { ...deposit('unlinked-1', from, null), events: [{ ...event, hash: null }] });
    await expect(unlinked).rejects.toMatchObject({ code: 'LC001' });
    expect(await written('unlinked-1')).toEqual({ commands: 0, available: `${from.balance}/${from.version}` });
    await commitChunk(db.pool, { ...deposit('unlinked-1', from, null), events: [{ ...event, hash: 'cd'.repeat(32) }] });
    expect((await written('unlinked-1')).commands).toBe(1);
  });

  it('refuses a chunk whose external reference another partition wrote since it read them, as stale state', async () => {
    const payment = (commandId: string) => ({
      commandId,
      serviceId: 5,
      externalRef: 'pi_race',
      userId: 1,
      direction: 'deposit' as const,
      amount: 100n,
      occurredAt: new Date().toISOString(),
    });
    const first = await availableNow();
    await commitChunk(db.pool, { ...deposit('race-1', first, null), externalPayments: [payment('race-1')] });
    const second = await availableNow();
    const again = commitChunk(db.pool, { ...deposit('race-2', second, null), externalPayments: [payment('race-2')] });
    await expect(again).rejects.toMatchObject({ reason: 'stale_state', detail: { userId: 1 } });
    expect(await written('race-2')).toEqual({ commands: 0, available: `${second.balance}/${second.version}` });
  });

  it('refuses a chunk decided on a balance or a version the account no longer holds (LS001)', async () => {
    const from = await availableNow();
    // An operator's update that leaves the version alone, behind a consumer's cache.
    await db.pool.query('UPDATE accounts SET balance = balance + 7 WHERE id = $1', [ids['user_available:1']]);
    await expect(commitChunk(db.pool, deposit('stale-1', from, null))).rejects.toMatchObject({ reason: 'stale_state' });
    const moved = await availableNow();
    await db.pool.query('UPDATE accounts SET version = version + 1 WHERE id = $1', [ids['user_available:1']]);
    await expect(commitChunk(db.pool, deposit('stale-2', moved, null))).rejects.toMatchObject({
      reason: 'stale_state',
    });
    expect((await written('stale-1')).commands + (await written('stale-2')).commands).toBe(0);
    const current = await availableNow();
    await commitChunk(db.pool, deposit('stale-3', current, null));
    expect(await written('stale-3')).toEqual({
      commands: 1,
      available: `${current.balance + 100n}/${current.version + 1n}`,
    });
  });

  it('writes chunks of several partitions in one statement, and names the one refused when one is', async () => {
    const claim = async (partition: number) =>
      BigInt((await db.pool.query("SELECT claim_partition('merged.commands', $1) AS e", [partition])).rows[0].e);
    const fenceOf = async (partition: number) => ({
      topic: 'merged.commands',
      partition,
      epoch: await claim(partition),
    });
    const [five, six] = [await fenceOf(5), await fenceOf(6)];
    const from = await availableNow();
    const a = { ...deposit('merged-a', from, five), transactions: [] };
    const b = { ...EMPTY, fence: six, commands: [{ ...command('merged-b'), userId: 2 }] };
    const [first, second] = await commitChunks(db.pool, [a, b]);
    expect([first!.writtenAt.getTime()]).toEqual([second!.writtenAt.getTime()]);
    expect((await written('merged-a')).commands + (await written('merged-b')).commands).toBe(2);
    await claim(6);
    const now = await availableNow();
    const refused = commitChunks(db.pool, [
      { ...deposit('merged-c', now, five), transactions: [] },
      { ...b, commands: [{ ...command('merged-d'), userId: 2 }] },
    ]);
    await expect(refused).rejects.toMatchObject({ reason: 'partition_lost', detail: { partitions: [6] } });
    expect((await written('merged-c')).commands + (await written('merged-d')).commands).toBe(0);
  });

  it('through the writer, merges the chunks that queued behind a write, fails only the one refused and writes the others', async () => {
    const writer = new ChunkWriter(db.pool, 2_000);
    const from = await availableNow();
    const duplicate = { ...EMPTY, commands: [{ ...command('writer-old'), userId: 3 }] };
    await commitChunks(db.pool, [duplicate]);
    // The first goes at once; the next two queue behind it and go together.
    const [first, fresh, again] = await Promise.allSettled([
      writer.commit({ ...EMPTY, commands: [{ ...command('writer-first'), userId: 4 }] }),
      writer.commit({ ...deposit('writer-new', from, null), transactions: [] }),
      writer.commit(duplicate),
    ]);
    expect([first.status, fresh.status]).toEqual(['fulfilled', 'fulfilled']);
    expect(again).toMatchObject({
      status: 'rejected',
      reason: { reason: 'duplicate', detail: { commandId: 'writer-old' } },
    });
    expect(await written('writer-new')).toEqual({
      commands: 1,
      available: `${from.balance + 100n}/${from.version + 1n}`,
    });
    // The first alone, the two merged (refused for one of them), the other again alone.
    expect({ writes: writer.writes, chunks: writer.chunks }).toEqual({ writes: 3, chunks: 4 });
  });
});
