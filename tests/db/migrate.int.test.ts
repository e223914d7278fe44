import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { COMMAND_TYPES } from '../../src/commands/command-types.ts';
import { migrate, readFunctionFiles, readMigrations } from '../../src/db/migrate.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import type { CommandInput } from '../../src/commands/schema.ts';
import { createTestDatabase, testConfig, type TestDatabase } from '../helpers/stack.ts';
import { applyInputs } from '../helpers/random-stream.ts';

describe('migrate', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it('has applied every file of sql/ to the template, in order', async () => {
    const files = await readMigrations();
    const { rows } = await db.pool.query<{ version: number; name: string }>(
      'SELECT version, name FROM schema_migrations ORDER BY version',
    );
    expect(rows.map((row) => row.name)).toEqual(files.map((file) => file.name));
    expect(await migrate(db.pool)).toEqual([]);
  });

  it('holds every function of sql/functions/ as its file says, and defines none of them in a numbered migration', async () => {
    const files = await readFunctionFiles();
    expect(files.length).toBeGreaterThan(0);
    const migrations = await readMigrations();
    for (const file of files) {
      const name = /^CREATE OR REPLACE FUNCTION ([a-z0-9_]+)\(/m.exec(file.sql)?.[1];
      expect(name, file.name).toBe(file.name.slice('functions/'.length, -'.sql'.length));
      const body = /\nAS \$\$\n([\s\S]*)\n\$\$;\s*$/.exec(file.sql)?.[1];
      const { rows } = await db.pool.query<{ prosrc: string }>('SELECT prosrc FROM pg_proc WHERE proname = $1', [name]);
      // One definition (no stale overload left behind by a changed signature), and it is the file's.
      expect(
        rows.map((r) => r.prosrc.replace(/^\n|\n$/g, '')),
        file.name,
      ).toEqual([body]);
      for (const migration of migrations)
        expect(migration.sql, `${migration.name} defines ${name}`).not.toMatch(
          new RegExp(`(CREATE|ALTER)( OR REPLACE)? FUNCTION ${name}\\b`),
        );
    }
  });

  it("holds the commands table's type constraint equal to the command catalog", async () => {
    const { rows } = await db.pool.query<{ definition: string }>(
      "SELECT pg_get_constraintdef(oid) AS definition FROM pg_constraint WHERE conname = 'commands_type_check'",
    );
    const allowed = [...rows[0]!.definition.matchAll(/'([a-z_]+)'::text/g)].map((m) => m[1]).sort();
    expect(allowed).toEqual([...COMMAND_TYPES].sort());
  });

  it('applies a changed function file, and only that one, on the next run', async () => {
    const fresh = await createTestDatabase();
    try {
      await fresh.pool.query(
        "UPDATE schema_functions SET sha256 = 'stale' WHERE name = 'functions/ledger_write_refunds.sql'",
      );
      await fresh.pool.query('DROP FUNCTION ledger_write_refunds');
      expect(await migrate(fresh.pool)).toEqual(['functions/ledger_write_refunds.sql']);
      const { rows } = await fresh.pool.query(
        "SELECT count(*)::int AS n FROM pg_proc WHERE proname = 'ledger_write_refunds'",
      );
      expect(rows[0].n).toBe(1);
      expect(await migrate(fresh.pool)).toEqual([]);
    } finally {
      await fresh.drop();
    }
  });

  it('0006 gives the postings of an existing ledger their balances after them', async () => {
    const fresh = await createTestDatabase();
    try {
      const config = testConfig(fresh);
      const inputs: CommandInput[] = [
        { id: 'd1', type: 'deposit', user_id: 1, amount: '100.00' },
        { id: 'd2', type: 'deposit', user_id: 2, amount: '7.00' },
        { id: 'r1', type: 'reserve', user_id: 1, service_id: 1, order_id: 1, amount: '30.00' },
        { id: 'w1', type: 'withdraw', user_id: 1, amount: '5.00' },
        { id: 'c1', type: 'capture', user_id: 1, service_id: 1, order_id: 1, amount: '20.00' },
        { id: 't1', type: 'transfer', user_id: 1, recipient_id: 2, amount: '15.00' },
        { id: '~settle:t1', type: 'settle', user_id: 2, amount: '15.00' },
        { id: 'w2', type: 'withdraw', user_id: 2, amount: '20.00' },
      ];
      // One command per chunk, so postings of one account span several chunks.
      for (const input of inputs) await applyInputs(fresh, config, [input]);
      // Back to the schema before 0006, data kept.
      await fresh.pool.query(
        'ALTER TABLE postings DROP COLUMN debit_balance_after, DROP COLUMN credit_balance_after; DELETE FROM schema_migrations WHERE version = 6',
      );
      expect(await migrate(fresh.pool)).toEqual(['0006_balances_at.sql']);
      expect(await verifyLedger(fresh.pool)).toEqual([]);
      const { rows } = await fresh.pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM postings WHERE debit_balance_after IS NOT NULL OR credit_balance_after IS NOT NULL',
      );
      expect(rows[0]!.n).toBe(9); // every posting here has a user side; the capture has two
    } finally {
      await fresh.drop();
    }
  });

  it('0012 leaves every existing account every right its role gives (no grant list)', async () => {
    const fresh = await createTestDatabase();
    try {
      await fresh.pool.query('ALTER TABLE users DROP COLUMN actions; DELETE FROM schema_migrations WHERE version = 12');
      await fresh.pool.query(
        "INSERT INTO users (username, password_hash, role, services) VALUES ('shop', 'x', 'service', '{101}'), ('billing', 'x', 'service', NULL)",
      );
      expect(await migrate(fresh.pool)).toEqual(['0012_principal_actions.sql']);
      const { rows } = await fresh.pool.query('SELECT username, actions FROM users ORDER BY username');
      expect(rows).toEqual([
        { username: 'billing', actions: null },
        { username: 'shop', actions: null },
      ]);
    } finally {
      await fresh.drop();
    }
  });

  it("0011 gives existing postings the version of their command's balance event", async () => {
    const fresh = await createTestDatabase();
    try {
      await applyInputs(fresh, testConfig(fresh), [
        { id: 'd1', type: 'deposit', user_id: 1, amount: '100.00' },
        { id: 'a1', type: 'set_alert', user_id: 1, direction: 'below', threshold: '50.00' },
        { id: 'r1', type: 'reserve', user_id: 1, service_id: 1, order_id: 1, amount: '60.00' },
        { id: 'c1', type: 'capture', user_id: 1, service_id: 1, order_id: 1, amount: '60.00' },
      ]);
      const versions = 'SELECT command_id, version_after::int AS version FROM postings ORDER BY id';
      const written = (await fresh.pool.query(versions)).rows;
      expect(written).toEqual([
        { command_id: 'd1', version: 1 },
        { command_id: 'r1', version: 2 },
        { command_id: 'c1', version: 3 },
      ]);
      await fresh.pool.query(
        'ALTER TABLE postings DROP COLUMN version_after; DELETE FROM schema_migrations WHERE version = 11',
      );
      expect(await migrate(fresh.pool)).toEqual(['0011_version_at.sql']);
      expect((await fresh.pool.query(versions)).rows).toEqual(written);
    } finally {
      await fresh.drop();
    }
  });

  it("0008 starts each user's balance version at the commands applied for them, so new events continue the count", async () => {
    const fresh = await createTestDatabase();
    try {
      const config = testConfig(fresh);
      const apply = (input: CommandInput) => applyInputs(fresh, config, [input]);
      for (const input of [
        { id: 'd1', type: 'deposit', user_id: 1, amount: '100.00' },
        { id: 'w1', type: 'withdraw', user_id: 1, amount: '500.00' }, // rejected: no version
        { id: 't1', type: 'transfer', user_id: 1, recipient_id: 2, amount: '15.00' },
        { id: '~settle:t1', type: 'settle', user_id: 2, amount: '15.00' },
      ] as CommandInput[])
        await apply(input);
      // Back to the schema before 0008 (and the later migrations that build on it), data kept.
      await fresh.pool.query(`
        DROP TABLE balance_events; DROP TABLE balance_alerts;
        DROP TABLE anchor_levels, anchor_leaves, anchors, history_chain_start;
        ALTER TABLE accounts DROP COLUMN version, DROP COLUMN alert_count, DROP COLUMN chain_hash;
        ALTER TABLE postings DROP COLUMN version_after;
        ALTER TABLE commands DROP CONSTRAINT commands_type_check;
        ALTER TABLE commands ADD CONSTRAINT commands_type_check
          CHECK (type IN ('deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer', 'settle', 'expire'));
        DELETE FROM schema_migrations WHERE version IN (8, 10, 11, 27)`);
      expect(await migrate(fresh.pool)).toEqual([
        '0008_balance_events.sql',
        '0010_balance_alerts.sql',
        '0011_version_at.sql',
        '0027_history_chain.sql',
      ]);
      const versions = await fresh.pool.query(
        "SELECT owner_id::int AS user, version::int FROM accounts WHERE kind = 'user_available' ORDER BY owner_id",
      );
      expect(versions.rows).toEqual([
        { user: 1, version: 2 },
        { user: 2, version: 1 },
      ]);
      const next = await apply({ id: 'd2', type: 'deposit', user_id: 1, amount: '1.00' });
      expect(next.events[0]!.map((e) => Number(e.sequence))).toEqual([3]);
      // Postings from before events know no version (a balance at their instants answers null).
      const postingVersions = await fresh.pool.query(
        'SELECT command_id, version_after::int AS version FROM postings ORDER BY id',
      );
      expect(postingVersions.rows).toEqual([
        { command_id: 'd1', version: null },
        { command_id: 't1', version: null },
        { command_id: '~settle:t1', version: null },
        { command_id: 'd2', version: 3 },
      ]);
    } finally {
      await fresh.drop();
    }
  });

  it('applies new files once, even when two runners race', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'));
    await writeFile(path.join(dir, '0001_first.sql'), 'CREATE TABLE race_a (id int);');
    await writeFile(path.join(dir, '0002_second.sql'), 'CREATE TABLE race_b (id int);');
    const fresh = await createTestDatabase();
    try {
      await fresh.pool.query('DROP TABLE schema_migrations');
      const results = await Promise.all([migrate(fresh.pool, dir), migrate(fresh.pool, dir)]);
      expect(results.flat().sort()).toEqual(['0001_first.sql', '0002_second.sql']);
      const { rows } = await fresh.pool.query('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((row) => row.version)).toEqual([1, 2]);
    } finally {
      await fresh.drop();
    }
  });

  it('rolls back a failing file completely and records nothing for it', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'));
    await writeFile(path.join(dir, '0001_ok.sql'), 'CREATE TABLE fine (id int);');
    await writeFile(path.join(dir, '0002_bad.sql'), 'CREATE TABLE half (id int); SELECT no_such_function();');
    const fresh = await createTestDatabase();
    try {
      await fresh.pool.query('DROP TABLE schema_migrations');
      await expect(migrate(fresh.pool, dir)).rejects.toThrow(/0002_bad\.sql failed/);
      const { rows } = await fresh.pool.query('SELECT version FROM schema_migrations');
      expect(rows.map((row) => row.version)).toEqual([1]);
      const half = await fresh.pool.query("SELECT to_regclass('half') AS t");
      expect(half.rows[0].t).toBeNull();
    } finally {
      await fresh.drop();
    }
  });

  it('refuses a file whose name is not NNNN_name.sql', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'migrations-'));
    await writeFile(path.join(dir, 'create.sql'), 'SELECT 1;');
    await expect(readMigrations(dir)).rejects.toThrow(/0001_name\.sql/);
  });
});
