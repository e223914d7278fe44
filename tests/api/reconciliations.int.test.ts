/**
 * Reconciliation over HTTP against a real ledger: a statement with a planted missing deposit, an
 * amount difference, a duplicate line and a payout covering three withdrawals, each reported in
 * its category; the same file twice answers the same run; a malformed file answers a clear error
 * and stores nothing; only admins may run it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import type { CommandInput } from '../../src/commands/schema.ts';
import { applyInputs } from '../helpers/random-stream.ts';
import { appWithoutKafka, createUser, type TestUser } from '../helpers/gateway.ts';
import { createTestDatabase, testConfig, type TestDatabase } from '../helpers/stack.ts';

const SERVICE = 101;

describe('reconciliation over HTTP', () => {
  let db: TestDatabase;
  let config: Config;
  let app: ReturnType<typeof appWithoutKafka>;
  let admin: TestUser;
  let service: TestUser;
  let user: TestUser;
  const at = (minutes: number) => new Date(Date.now() + minutes * 60_000).toISOString();

  const apply = (...inputs: CommandInput[]) => applyInputs(db, config, inputs);

  const post = (csv: string | Buffer, by: TestUser, query = '') =>
    app.inject({
      method: 'POST',
      url: `/api/reconciliations/?service_id=${SERVICE}${query}`,
      headers: { ...by.header, 'content-type': 'text/csv' },
      payload: csv,
    });
  const stored = async () =>
    (await db.pool.query('SELECT count(*)::int AS n FROM reconciliations')).rows[0].n as number;

  /** What the provider says happened: one line of each kind a month's close finds. */
  const statement = () =>
    [
      'payment_id,gross,currency,time,direction',
      `pi_1,100.00,RUB,${at(0)},deposit`,
      `pi_2,50.00,RUB,${at(0)},deposit`,
      `pi_2,50.00,RUB,${at(0)},deposit`,
      `pi_3,70.00,RUB,${at(0)},deposit`,
      `pi_missing,20.00,RUB,${at(0)},deposit`,
      `po_9,60.00,RUB,${at(5)},payout`,
      '',
    ].join('\n');

  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db);
    app = appWithoutKafka(config, db);
    [admin, service, user] = await Promise.all([
      createUser(db, config, 'admin'),
      createUser(db, config, 'service'),
      createUser(db, config),
    ]);
    const paid = { service_id: SERVICE };
    await apply(
      { id: 'd-1', type: 'deposit', user_id: user.id, amount: '100.00', ...paid, external_ref: 'pi_1' },
      { id: 'd-2', type: 'deposit', user_id: user.id, amount: '50.00', ...paid, external_ref: 'pi_2' },
      { id: 'd-3', type: 'deposit', user_id: user.id, amount: '69.00', ...paid, external_ref: 'pi_3' },
      { id: 'w-1', type: 'withdraw', user_id: user.id, amount: '10.00', ...paid },
      { id: 'w-2', type: 'withdraw', user_id: user.id, amount: '20.00', ...paid },
      { id: 'w-3', type: 'withdraw', user_id: user.id, amount: '30.00', ...paid },
      { id: 'd-extra', type: 'deposit', user_id: user.id, amount: '7.00', ...paid, external_ref: 'pi_extra' },
      {
        id: 'other-service',
        type: 'deposit',
        user_id: user.id,
        amount: '20.00',
        service_id: 202,
        external_ref: 'pi_missing',
      },
    );
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('reports each planted difference in its category, with counts and totals', async () => {
    const response = await post(statement(), admin, '&map=reference=payment_id,amount=gross');
    expect(response.statusCode).toBe(201);
    const run = response.json();
    expect(run).toMatchObject({ service_id: SERVICE, statement_lines: 6, repeated: false });
    expect(run.summary.categories).toEqual({
      matched: { count: 2, statement: '150.00', ledger: '150.00' },
      matched_many: { count: 1, statement: '60.00', ledger: '60.00' },
      amount_differs: { count: 1, statement: '70.00', ledger: '69.00' },
      time_differs: { count: 0, statement: '0.00', ledger: '0.00' },
      duplicate_in_statement: { count: 1, statement: '50.00', ledger: '0.00' },
      missing_in_ledger: { count: 1, statement: '20.00', ledger: '0.00' },
      missing_in_statement: { count: 1, statement: '0.00', ledger: '7.00' },
    });
    const results = (await app.inject({ method: 'GET', url: run.results_url, headers: admin.header })).json();
    const shown = results.results.map((r: Record<string, unknown>) => [
      r.category,
      r.reference,
      r.ledger_command_ids,
      r.difference,
    ]);
    expect(shown).toEqual([
      ['duplicate_in_statement', 'pi_2', [], null],
      ['matched', 'pi_1', ['d-1'], '0'],
      ['matched', 'pi_2', ['d-2'], '0'],
      ['amount_differs', 'pi_3', ['d-3'], '100'],
      ['missing_in_ledger', 'pi_missing', [], null],
      ['matched_many', 'po_9', ['w-1', 'w-2', 'w-3'], '0'],
      ['missing_in_statement', 'pi_extra', ['d-extra'], null],
    ]);
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toContain(
      `balance_reconciliation_unmatched_minor{service_id="${SERVICE}",side="statement"} 14000`,
    );
  });

  it('answers the same run for the same file, and gives its results as CSV', async () => {
    const csv = statement();
    const first = (await post(csv, admin, '&map=reference=payment_id,amount=gross')).json();
    const again = await post(csv, admin, '&map=reference=payment_id,amount=gross');
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ reconciliation_id: first.reconciliation_id, repeated: true });
    const asCsv = await app.inject({ method: 'GET', url: `${first.results_url}?format=csv`, headers: admin.header });
    expect(asCsv.headers['content-type']).toBe('text/csv; charset=utf-8');
    const lines = asCsv.body.trimEnd().split('\r\n');
    expect(lines[0]).toBe(
      'position;category;rule;statement_line;reference;direction;statement_amount;statement_time;ledger_command_ids;ledger_amount;ledger_time;difference',
    );
    expect(lines).toHaveLength(8);
    expect(lines[6]).toMatch(
      /^5;matched_many;one_to_many;7;po_9;withdraw;60\.00;[^;]+;w-1 w-2 w-3;60\.00;[^;]+;0\.00$/,
    );
  });

  it.each([
    ['bytes that are not UTF-8', Buffer.from([0x72, 0x65, 0x66, 0xff, 0x0a]), 400, /not UTF-8/],
    [
      'a column missing',
      'reference,amount,time,direction\npi_1,1.00,2026-12-01T10:00:00Z,in\n',
      400,
      /column "currency" is missing/,
    ],
    [
      'a formula in a cell',
      'reference,amount,currency,time,direction\n@SUM(A1),1.00,RUB,2026-12-01T10:00:00Z,in\n',
      400,
      /spreadsheet formula/,
    ],
    ['100 MB', Buffer.alloc(100 * 1024 * 1024, 0x61), 413, /larger than the limit/],
  ])('answers %s with a clear error and stores nothing', async (_what, body, status, message) => {
    const before = await stored();
    const response = await post(body, admin);
    expect(response.statusCode).toBe(status);
    expect(response.json().message).toMatch(message);
    expect(await stored()).toBe(before);
  });

  it('makes a new run with rerun=true, and finds a referenced payment outside the period as time_differs', async () => {
    const late = ['reference,amount,currency,time,direction', `pi_1,100.00,RUB,${at(3 * 24 * 60)},deposit`, ''].join(
      '\n',
    );
    const first = await post(late, admin);
    expect(first.statusCode).toBe(201);
    expect(first.json().summary.categories.time_differs).toEqual({ count: 1, statement: '100.00', ledger: '100.00' });
    const rerun = await post(late, admin, '&rerun=true');
    expect(rerun.statusCode).toBe(201);
    expect(rerun.json().reconciliation_id).not.toBe(first.json().reconciliation_id);
    expect((await post(late, admin)).json()).toMatchObject({
      reconciliation_id: first.json().reconciliation_id,
      repeated: true,
    });
  });

  it('reads no statement from a caller without a token, however large', async () => {
    const before = await stored();
    const response = await app.inject({
      method: 'POST',
      url: `/api/reconciliations/?service_id=${SERVICE}`,
      headers: { 'content-type': 'text/csv' },
      payload: Buffer.alloc(50 * 1024 * 1024, 0x61),
    });
    expect(response.statusCode).toBe(401);
    expect(await stored()).toBe(before);
  });

  it('refuses everyone but admins, and a body that is not CSV', async () => {
    for (const caller of [service, user]) expect((await post(statement(), caller)).statusCode).toBe(403);
    const json = await app.inject({
      method: 'POST',
      url: `/api/reconciliations/?service_id=${SERVICE}`,
      headers: { ...admin.header, 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(json.statusCode).toBe(415);
    for (const query of ['service_id=0', 'service_id=1&amount_tolerance=-1', 'service_id=1&time_drift_s=1e9'])
      expect(
        (
          await app.inject({
            method: 'POST',
            url: `/api/reconciliations/?${query}`,
            headers: { ...admin.header, 'content-type': 'text/csv' },
            payload: 'x',
          })
        ).statusCode,
        query,
      ).toBe(400);
    const unknown = await app.inject({
      method: 'GET',
      url: '/api/reconciliations/00000000-0000-4000-8000-000000000000',
      headers: admin.header,
    });
    expect(unknown.statusCode).toBe(404);
    expect(
      (await app.inject({ method: 'GET', url: '/api/reconciliations/not-a-uuid', headers: admin.header })).statusCode,
    ).toBe(400);
  });
});
