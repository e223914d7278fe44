/**
 * Deposits and withdrawals that name their service and the provider's reference: the reference
 * is unique per service, across both directions and within one chunk, and a refused reuse
 * changes nothing (a canary behind it still applies).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commandFingerprint, createCommandSchema, type CommandInput } from '../../src/commands/schema.ts';
import { inTransaction } from '../../src/db/pool.ts';
import { applyBatch } from '../../src/ledger/apply-batch.ts';
import { verifyLedger } from '../../src/ledger/verify.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/stack.ts';

const schema = createCommandSchema({ amountMinorMax: 100_000_000_000 });
const LIMITS = { amountMinorMax: 100_000_000_000n, balanceMinorMax: 1_000_000_000_000_000n, alertsPerUserMax: 20 };

describe('external references', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  async function apply(...inputs: CommandInput[]): Promise<string[]> {
    const items = inputs.map((input) => {
      const command = schema.parse(input);
      return { command, fingerprint: commandFingerprint(command), partition: null, offset: null, principal: 'test' };
    });
    const { result } = await inTransaction(db.pool, (client) => applyBatch(client, items, LIMITS));
    return result.replies.map((r) => `${r.command_id}:${r.code}`);
  }

  it("refuses a user's second deposit or withdrawal with the same reference of the same service, and nothing else", async () => {
    const ref = { service_id: 101, external_ref: 'pi_3N-001' };
    expect(await apply({ id: 'e-1', type: 'deposit', user_id: 1, amount: '10.00', ...ref })).toEqual(['e-1:ok']);
    expect(
      await apply(
        // The provider's webhook again, under another idempotency key.
        { id: 'e-2', type: 'deposit', user_id: 1, amount: '10.00', ...ref },
        // Another user's: decided on another partition, so not refused here (docs/reconciliation.md).
        { id: 'e-3', type: 'deposit', user_id: 2, amount: '10.00', ...ref },
        { id: 'e-4', type: 'withdraw', user_id: 1, amount: '1.00', ...ref },
        // The same reference at another service is another payment.
        { id: 'e-5', type: 'deposit', user_id: 1, amount: '2.00', service_id: 202, external_ref: 'pi_3N-001' },
        // Two deliveries in one chunk: the first applies.
        { id: 'e-6', type: 'withdraw', user_id: 1, amount: '3.00', service_id: 101, external_ref: 'po_77' },
        { id: 'e-7', type: 'withdraw', user_id: 1, amount: '3.00', service_id: 101, external_ref: 'po_77' },
        { id: 'canary', type: 'deposit', user_id: 1, amount: '0.01' },
      ),
    ).toEqual([
      'e-2:external_ref_reused',
      'e-3:ok',
      'e-4:external_ref_reused',
      'e-5:ok',
      'e-6:ok',
      'e-7:external_ref_reused',
      'canary:ok',
    ]);
    const { rows } = await db.pool.query(
      'SELECT command_id, service_id::int, external_ref, direction, amount::int FROM external_payments ORDER BY command_id',
    );
    expect(rows).toEqual([
      { command_id: 'e-1', service_id: 101, external_ref: 'pi_3N-001', direction: 'deposit', amount: 1000 },
      { command_id: 'e-3', service_id: 101, external_ref: 'pi_3N-001', direction: 'deposit', amount: 1000 },
      { command_id: 'e-5', service_id: 202, external_ref: 'pi_3N-001', direction: 'deposit', amount: 200 },
      { command_id: 'e-6', service_id: 101, external_ref: 'po_77', direction: 'withdraw', amount: 300 },
    ]);
    expect(await verifyLedger(db.pool)).toEqual([]);
  });

  it('records a deposit that names only its service, without a reference, for matching by amount and time', async () => {
    expect(await apply({ id: 'n-1', type: 'deposit', user_id: 3, amount: '4.00', service_id: 101 })).toEqual([
      'n-1:ok',
    ]);
    const { rows } = await db.pool.query("SELECT external_ref FROM external_payments WHERE command_id = 'n-1'");
    expect(rows).toEqual([{ external_ref: null }]);
  });

  it('holds every recorded payment to its command in verify', async () => {
    await db.pool.query("UPDATE external_payments SET amount = amount + 1 WHERE command_id = 'e-6'");
    const found = (await verifyLedger(db.pool)).find((v) => v.check === 'external_payments_match_commands');
    expect(found?.rows).toEqual([expect.objectContaining({ command_id: 'e-6' })]);
    await db.pool.query("UPDATE external_payments SET amount = amount - 1 WHERE command_id = 'e-6'");
  });

  it('refuses a reference without its service, and a malformed one, at the schema', () => {
    expect(() => schema.parse({ id: 'x', type: 'deposit', user_id: 1, amount: '1.00', external_ref: 'a' })).toThrow(
      /service_id/,
    );
    for (const bad of ['', 'a b', 'x'.repeat(101), '=cmd()', 'é'])
      expect(
        () => schema.parse({ id: 'x', type: 'deposit', user_id: 1, amount: '1.00', service_id: 1, external_ref: bad }),
        bad,
      ).toThrow();
  });
});
