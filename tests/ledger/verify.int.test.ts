import { afterEach, describe, expect, it } from 'vitest';
import { commandFingerprint, createCommandSchema, type CommandInput } from '../../src/commands/schema.ts';
import { inTransaction } from '../../src/db/pool.ts';
import { applyBatch } from '../../src/ledger/apply-batch.ts';
import { settleOf } from '../../src/ledger/core.ts';
import { anchorSigner } from '../../src/ledger/anchor-signing.ts';
import { createAnchor } from '../../src/ledger/store/anchors.ts';
import { CHAIN_CHECKS, unsettledTransfers, verifyLedger } from '../../src/ledger/verify.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/stack.ts';

const schema = createCommandSchema({ amountMinorMax: 100_000_000_000 });

/** A small ledger with every kind of account and a settled and an unsettled transfer. */
async function seededLedger(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  const inputs: CommandInput[] = [
    { id: 'dep', type: 'deposit', user_id: 1, amount: '100.00' },
    // Fires once, at 'tr' (70.00 -> 55.00): the ledger has a threshold_crossed event (part 1).
    { id: 'alert', type: 'set_alert', user_id: 1, direction: 'below', threshold: '60.00' },
    { id: 'res', type: 'reserve', user_id: 1, service_id: 5, order_id: 1, amount: '30.00' },
    { id: 'cap', type: 'capture', user_id: 1, service_id: 5, order_id: 1, amount: '20.00' },
    { id: 'res2', type: 'reserve', user_id: 1, service_id: 5, order_id: 2, amount: '10.00' },
    { id: 'tr', type: 'transfer', user_id: 1, recipient_id: 2, amount: '15.00' },
    { id: 'tr2', type: 'transfer', user_id: 1, recipient_id: 2, amount: '5.00' },
    { id: 'ref', type: 'refund', user_id: 1, service_id: 5, order_id: 1, amount: '5.00' },
    { id: 'frz', type: 'freeze', user_id: 1, reason: 'review' },
  ];
  const commands = inputs.map((input) => schema.parse(input));
  const transfer = commands.find((c) => c.id === 'tr');
  if (transfer?.type !== 'transfer') throw new Error('seed has no transfer');
  commands.push(settleOf(transfer));
  const items = commands.map((command) => ({
    command,
    fingerprint: commandFingerprint(command),
    partition: null,
    offset: null,
    principal: 'test',
  }));
  await inTransaction(db.pool, (client) =>
    applyBatch(client, items, {
      amountMinorMax: 100_000_000_000n,
      balanceMinorMax: 1_000_000_000_000_000n,
      alertsPerUserMax: 20,
    }),
  );
  return db;
}

const ACCOUNT = (kind: string, owner: number) =>
  `(SELECT id FROM accounts WHERE kind = '${kind}' AND owner_id = ${owner})`;

/** Each corruption and the check that must name it. */
const CORRUPTIONS: Array<{ check: string; sql: string[] }> = [
  {
    check: 'postings_match_command',
    sql: [`UPDATE postings SET credit_account_id = ${ACCOUNT('user_available', 2)} WHERE command_id = 'dep'`],
  },
  {
    check: 'postings_match_command',
    sql: [`UPDATE postings SET credit_account_id = ${ACCOUNT('user_available', 2)} WHERE command_id = 'tr'`],
  },
  {
    check: 'balances_after_match_postings',
    sql: [`UPDATE postings SET credit_balance_after = credit_balance_after + 1 WHERE command_id = 'dep'`],
  },
  {
    check: 'balances_after_match_postings',
    sql: [`UPDATE postings SET debit_balance_after = NULL WHERE command_id = 'tr'`],
  },
  { check: 'balances_sum_to_zero', sql: [`UPDATE accounts SET balance = balance + 1 WHERE kind = 'revenue'`] },
  {
    check: 'versions_match_events',
    sql: [`UPDATE accounts SET version = version + 1 WHERE kind = 'user_available' AND version > 0`],
  },
  {
    check: 'versions_match_events',
    sql: [
      `DELETE FROM balance_events e WHERE e.sequence = (SELECT max(sequence) FROM balance_events x WHERE x.user_id = e.user_id)`,
    ],
  },
  {
    check: 'alert_counts_match_alerts',
    sql: [`UPDATE accounts SET alert_count = 0 WHERE kind = 'user_available' AND owner_id = 1`],
  },
  { check: 'alert_counts_match_alerts', sql: [`DELETE FROM balance_alerts WHERE id = 'alert'`] },
  {
    check: 'balance_equals_postings',
    sql: [`UPDATE accounts SET balance = balance - 1 WHERE kind = 'user_available' AND owner_id = 1`],
  },
  {
    check: 'no_negative_user_balance',
    sql: [
      'ALTER TABLE accounts DROP CONSTRAINT user_balance_not_negative',
      `UPDATE accounts SET balance = -1 WHERE kind = 'user_available' AND owner_id = 1`,
    ],
  },
  {
    check: 'revenue_not_negative',
    sql: [`UPDATE accounts SET balance = -1 WHERE kind = 'revenue'`],
  },
  {
    check: 'no_negative_incoming',
    sql: [`UPDATE accounts SET balance = -100 WHERE kind = 'user_incoming' AND owner_id = 2`],
  },
  {
    check: 'settles_match_transfers',
    sql: [
      `INSERT INTO commands (id, fingerprint, type, user_id, status, code) VALUES ('~settle:nothing', 'x', 'settle', 2, 'applied', 'ok')`,
      `INSERT INTO postings (command_id, debit_account_id, credit_account_id, amount) VALUES ('~settle:nothing', ${ACCOUNT('user_incoming', 2)}, ${ACCOUNT('user_available', 2)}, 500)`,
    ],
  },
  {
    // The leg of 'tr' settled a second time under its other id: it matches its transfer, so only
    // the one-settle-per-leg check sees it.
    check: 'leg_settled_once',
    sql: [
      `INSERT INTO commands (id, fingerprint, type, user_id, status, code) VALUES ('~settle:tr#2', 'x', 'settle', 2, 'applied', 'ok')`,
      `INSERT INTO postings (command_id, debit_account_id, credit_account_id, amount) VALUES ('~settle:tr#2', ${ACCOUNT('user_incoming', 2)}, ${ACCOUNT('user_available', 2)}, 1500)`,
    ],
  },
  {
    check: 'command_applied_once',
    sql: [
      `INSERT INTO postings (command_id, debit_account_id, credit_account_id, amount) SELECT command_id, debit_account_id, credit_account_id, amount FROM postings WHERE command_id = 'dep'`,
    ],
  },
  {
    check: 'postings_reference_existing_rows',
    sql: [`UPDATE postings SET command_id = 'ghost' WHERE command_id = 'dep'`],
  },
  {
    check: 'transactions_link_to_applied_commands',
    sql: [`UPDATE transactions SET command_id = 'ghost' WHERE command_id = 'dep'`],
  },
  {
    check: 'reserved_equals_open_reservations',
    sql: [`UPDATE reservations SET amount = amount + 1 WHERE status = 'open'`],
  },
  {
    check: 'postings_match_command',
    sql: [`UPDATE postings SET credit_account_id = ${ACCOUNT('user_available', 2)} WHERE command_id = 'ref'`],
  },
  {
    // A refund paid out of another service's revenue.
    check: 'postings_match_command',
    sql: [
      `INSERT INTO accounts (kind, owner_id) VALUES ('revenue', 6)`,
      `UPDATE postings SET debit_account_id = ${ACCOUNT('revenue', 6)} WHERE command_id = 'ref'`,
    ],
  },
  {
    check: 'refunds_match_orders',
    sql: [`UPDATE reservations SET refunded_amount = refunded_amount + 1 WHERE status = 'captured'`],
  },
  {
    check: 'refunds_match_orders',
    sql: [`DELETE FROM transactions WHERE command_id = 'ref'`],
  },
  {
    check: 'frozen_matches_freezes',
    sql: [`UPDATE accounts SET frozen_reason = NULL WHERE kind = 'user_available' AND owner_id = 1`],
  },
  {
    check: 'frozen_matches_freezes',
    sql: [`DELETE FROM account_freezes WHERE command_id = 'frz'`],
  },
  {
    check: 'command_applied_once',
    sql: [
      `INSERT INTO postings (command_id, debit_account_id, credit_account_id, amount) VALUES ('frz', ${ACCOUNT('user_available', 1)}, ${ACCOUNT('user_reserved', 1)}, 1)`,
    ],
  },
  {
    check: 'closed_reservations_accounted',
    sql: [`UPDATE reservations SET captured_amount = captured_amount - 1 WHERE status = 'captured'`],
  },
];

describe('verify', () => {
  let db: TestDatabase | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });

  it('passes on a consistent ledger with a transfer still waiting for its settle', async () => {
    db = await seededLedger();
    const alertEvents = await db.pool.query(`SELECT command_id FROM balance_events WHERE part > 0`);
    expect(alertEvents.rows).toEqual([{ command_id: 'tr' }]);
    const refunded = await db.pool.query(
      `SELECT captured_amount, refunded_amount FROM reservations WHERE order_id = 1`,
    );
    expect(refunded.rows).toEqual([{ captured_amount: '2000', refunded_amount: '500' }]);
    const freezes = await db.pool.query(`SELECT user_id, command_id, frozen, reason, principal FROM account_freezes`);
    expect(freezes.rows).toEqual([
      { user_id: '1', command_id: 'frz', frozen: true, reason: 'review', principal: 'test' },
    ]);
    expect(await verifyLedger(db.pool)).toEqual([]);
    expect(await unsettledTransfers(db.pool)).toEqual({ users: 1, minor: 500n });
  });

  it.each(CORRUPTIONS)('names $check when the ledger breaks it', async ({ check, sql }) => {
    db = await seededLedger();
    for (const statement of sql) await db.pool.query(statement);
    const violations = await verifyLedger(db.pool);
    expect(violations.map((v) => v.check)).toContain(check);
    expect(violations.find((v) => v.check === check)!.rows.length).toBeGreaterThan(0);
  });
});

/** Re-links user `userId`'s chain from its first event, as an operator covering an edit would. */
const RELINK_USER_1 = `DO $$
DECLARE r record; prev bytea := decode(repeat('00', 32), 'hex');
BEGIN
  FOR r IN SELECT sequence, string_agg(payload, E'\\n' ORDER BY part) AS bytes FROM balance_events
           WHERE user_id = 1 GROUP BY sequence ORDER BY sequence LOOP
    prev := sha256(prev || convert_to(r.bytes, 'UTF8'));
    UPDATE balance_events SET hash = prev WHERE user_id = 1 AND sequence = r.sequence AND part = 0;
  END LOOP;
  UPDATE accounts SET chain_hash = prev WHERE kind = 'user_available' AND owner_id = 1;
END $$`;

/** Edits of the history, the chain checks that name each, and the other checks that see it too (most see nothing). */
const TAMPERING: Array<{ what: string; checks: string[]; others?: string[]; sql: string[] }> = [
  {
    what: "a history row's comment",
    checks: ['history_rows_chained'],
    sql: [`UPDATE transactions SET comment = 'edited' WHERE command_id = 'tr' AND user_id = 1`],
  },
  {
    what: 'a pair of history rows deleted (both sides of a transfer)',
    checks: ['history_rows_chained'],
    others: ['command_applied_once'],
    sql: [`DELETE FROM transactions WHERE command_id = 'tr2'`],
  },
  {
    what: 'a balance event deleted with its history rows',
    checks: ['history_chain'],
    others: ['versions_match_events'],
    sql: [`DELETE FROM transactions WHERE command_id = 'res2'`, `DELETE FROM balance_events WHERE command_id = 'res2'`],
  },
  {
    what: 'two balance events swapped',
    checks: ['history_chain'],
    sql: [
      `UPDATE balance_events e SET payload = o.payload, hash = o.hash
       FROM balance_events o WHERE e.user_id = 1 AND o.user_id = 1 AND e.part = 0 AND o.part = 0
         AND ((e.command_id = 'res' AND o.command_id = 'cap') OR (e.command_id = 'cap' AND o.command_id = 'res'))`,
    ],
  },
  {
    what: "an event's comment, its history row and every later link rewritten",
    checks: ['anchor_holds'],
    sql: [
      `UPDATE transactions SET comment = 'rewritten' WHERE command_id = 'tr' AND user_id = 1`,
      `UPDATE transactions SET comment = 'rewritten' WHERE command_id = 'tr' AND user_id = 2`,
      `UPDATE balance_events SET payload = replace(payload, '"comment":null', '"comment":"rewritten"') WHERE command_id = 'tr' AND part = 0`,
      RELINK_USER_1,
    ],
  },
];

describe('verify: the history chain', () => {
  let db: TestDatabase | undefined;
  afterEach(async () => {
    await db?.drop();
    db = undefined;
  });
  const signer = anchorSigner('test-only-anchor-signing-key-for-verify-0123');
  const keys = new Map([[signer.keyId, signer.publicKeyBase64]]);

  it.each(TAMPERING)('finds $what', async ({ checks, others = [], sql }) => {
    db = await seededLedger();
    await createAnchor(db.pool, signer);
    expect(await verifyLedger(db.pool, keys)).toEqual([]);
    for (const statement of sql) await db.pool.query(statement);
    const violations = await verifyLedger(db.pool, keys);
    const chainChecks = new Set<string>(CHAIN_CHECKS.map((c) => c.name));
    expect(violations.filter((v) => !chainChecks.has(v.check)).map((v) => v.check)).toEqual(others);
    expect(violations.map((v) => v.check)).toEqual(expect.arrayContaining(checks));
  });

  it('finds an amount changed with the balances changed to match, so the sums still verify', async () => {
    db = await seededLedger();
    const available1 = ACCOUNT('user_available', 1);
    for (const statement of [
      `UPDATE transactions SET amount = amount + 100 WHERE command_id = 'dep'`,
      `UPDATE postings SET amount = amount + 100 WHERE command_id = 'dep'`,
      `UPDATE postings SET credit_balance_after = credit_balance_after + 100 WHERE credit_account_id = ${available1}`,
      `UPDATE postings SET debit_balance_after = debit_balance_after + 100 WHERE debit_account_id = ${available1}`,
      `UPDATE accounts SET balance = balance + 100 WHERE id = ${available1}`,
      `UPDATE accounts SET balance = balance - 100 WHERE kind = 'external'`,
    ])
      await db.pool.query(statement);
    const violations = await verifyLedger(db.pool, keys);
    const chainChecks = new Set<string>(CHAIN_CHECKS.map((c) => c.name));
    expect(violations.filter((v) => !chainChecks.has(v.check)).map((v) => v.check)).toEqual([]);
    const found = violations.map((v) => [v.check, v.rows[0]]);
    expect(found).toEqual([
      ['history_chain', expect.objectContaining({ user_id: 1, differs: expect.stringContaining('56.00 available') })],
      ['history_rows_chained', expect.objectContaining({ differs: 'a history row no chained event shows' })],
    ]);
  });

  it('walks a chain of more than nine versions in version order', async () => {
    db = await seededLedger();
    const schema = createCommandSchema({ amountMinorMax: 100_000_000_000 });
    const items = Array.from({ length: 12 }, (_, i) => {
      const command = schema.parse({ id: `many-${i}`, type: 'deposit', user_id: 3, amount: '1.00' });
      return { command, fingerprint: commandFingerprint(command), partition: null, offset: null, principal: 'test' };
    });
    const limits = { amountMinorMax: 100_000_000_000n, balanceMinorMax: 1_000_000_000_000_000n, alertsPerUserMax: 20 };
    await inTransaction(db.pool, (client) => applyBatch(client, items, limits));
    expect(await verifyLedger(db.pool, keys)).toEqual([]);
  });

  it('names the first broken link: the user, the version, and what differs', async () => {
    db = await seededLedger();
    await db.pool.query(
      `UPDATE balance_events SET payload = replace(payload, '"30.00"', '"31.00"') WHERE command_id = 'res'`,
    );
    const chain = (await verifyLedger(db.pool, keys)).find((v) => v.check === 'history_chain');
    expect(chain?.rows).toEqual([
      {
        user_id: 1,
        version: '2',
        differs: expect.stringMatching(/^stored hash [0-9a-f]{64}, the events hash to [0-9a-f]{64}$/),
      },
    ]);
  });

  it('finds an anchor signed with a key it was not told to trust, however well signed', async () => {
    db = await seededLedger();
    const stranger = anchorSigner('test-only-a-key-nobody-trusts-0123456789ab');
    await createAnchor(db.pool, stranger);
    expect(await verifyLedger(db.pool, new Map([[stranger.keyId, stranger.publicKeyBase64]]))).toEqual([]);
    const found = (await verifyLedger(db.pool, keys)).find((v) => v.check === 'anchor_holds');
    expect(found?.rows).toEqual([
      { anchor_id: 1, differs: expect.stringContaining(`signed with key ${stranger.keyId}, which is not trusted`) },
    ]);
  });

  it("finds an anchor whose signature is not the key's", async () => {
    db = await seededLedger();
    const anchor = (await createAnchor(db.pool, signer))!;
    await db.pool.query(`UPDATE anchors SET users = users + 1 WHERE id = $1`, [anchor.id]);
    const found = (await verifyLedger(db.pool, keys)).find((v) => v.check === 'anchor_holds');
    expect(found?.rows).toEqual([
      { anchor_id: anchor.id, differs: `the signature does not verify with key ${signer.keyId}` },
    ]);
  });
});
