/**
 * The ledger's invariants, checked over the whole database. Each check is one query that
 * returns the offending rows (at most VIOLATIONS_SHOWN_MAX of them); an empty result is a pass.
 * The code asserts the same rules as it writes; this is the independent second look.
 */
import type pg from 'pg';
import { typesWhere } from '../commands/command-types.ts';
import { withClient } from '../db/pool.ts';
import { verifyChains } from './verify-chain.ts';

export const VIOLATIONS_SHOWN_MAX = 20;

export interface Check {
  readonly name: string;
  readonly description: string;
  readonly sql: string;
}

const ACCOUNT_MOVEMENTS = `
  SELECT credit_account_id AS account_id, amount AS delta, command_id FROM postings
  UNION ALL
  SELECT debit_account_id, -amount, command_id FROM postings`;

/** Commands that apply without moving money (the catalog's `movesMoney`), as an SQL list. */
const NO_MONEY_COMMANDS = typesWhere((spec) => !spec.movesMoney)
  .map((type) => `'${type}'`)
  .join(', ');

export const CHECKS: readonly Check[] = [
  {
    // A posting is balanced by construction (one amount, a debit and a credit), so what can go
    // wrong per command is where the money went: this checks every leg against the command.
    name: 'postings_match_command',
    description: "every posting moves money the way its command's type allows, on its command's user",
    sql: `
      SELECT p.id, c.id AS command_id, c.type, c.user_id, d.kind AS debit_kind, d.owner_id AS debit_owner, cr.kind AS credit_kind, cr.owner_id AS credit_owner
      FROM postings p
      JOIN commands c ON c.id = p.command_id
      JOIN accounts d ON d.id = p.debit_account_id
      JOIN accounts cr ON cr.id = p.credit_account_id
      WHERE NOT (
           (c.type = 'deposit' AND d.kind = 'external' AND cr.kind = 'user_available' AND cr.owner_id = c.user_id)
        OR (c.type = 'withdraw' AND d.kind = 'user_available' AND d.owner_id = c.user_id AND cr.kind = 'external')
        OR (c.type = 'reserve' AND d.kind = 'user_available' AND d.owner_id = c.user_id AND cr.kind = 'user_reserved' AND cr.owner_id = c.user_id)
        OR (c.type = 'capture' AND d.kind = 'user_reserved' AND d.owner_id = c.user_id
            AND (cr.kind = 'revenue' OR (cr.kind = 'user_available' AND cr.owner_id = c.user_id)))
        OR (c.type IN ('release', 'expire') AND d.kind = 'user_reserved' AND d.owner_id = c.user_id AND cr.kind = 'user_available' AND cr.owner_id = c.user_id)
        OR (c.type = 'transfer' AND d.kind = 'user_available' AND d.owner_id = c.user_id AND cr.kind = 'user_incoming' AND cr.owner_id <> c.user_id)
        OR (c.type = 'settle' AND d.kind = 'user_incoming' AND d.owner_id = c.user_id AND cr.kind = 'user_available' AND cr.owner_id = c.user_id)
        OR (c.type = 'refund' AND d.kind = 'revenue' AND cr.kind = 'user_available' AND cr.owner_id = c.user_id
            AND EXISTS (SELECT 1 FROM transactions t WHERE t.command_id = c.id AND t.service_id = d.owner_id)))`,
  },
  {
    name: 'balances_sum_to_zero',
    description: 'all account balances together sum to zero',
    sql: `SELECT sum(balance) AS sum FROM accounts HAVING sum(balance) <> 0`,
  },
  {
    name: 'balance_equals_postings',
    description: "every account's balance equals its credits minus its debits",
    sql: `
      SELECT a.id, a.kind, a.owner_id, a.balance, coalesce(m.total, 0) AS postings
      FROM accounts a
      LEFT JOIN (SELECT account_id, sum(delta) AS total FROM (${ACCOUNT_MOVEMENTS}) x GROUP BY account_id) m ON m.account_id = a.id
      WHERE a.balance <> coalesce(m.total, 0)`,
  },
  {
    name: 'balances_after_match_postings',
    description:
      "every posting's recorded balance of a user's available or reserved account equals that account's running sum up to it",
    // The balances at a point in time read these columns (sql/0006_balances_at.sql).
    sql: `
      SELECT account_id, posting_id, recorded, running FROM (
        SELECT l.account_id, l.posting_id, l.recorded,
               sum(l.delta) OVER (PARTITION BY l.account_id ORDER BY l.created_at, l.posting_id) AS running
        FROM (
          SELECT credit_account_id AS account_id, id AS posting_id, created_at, amount AS delta, credit_balance_after AS recorded FROM postings
          UNION ALL
          SELECT debit_account_id, id, created_at, -amount, debit_balance_after FROM postings
        ) l
        JOIN accounts a ON a.id = l.account_id AND a.kind IN ('user_available', 'user_reserved')
      ) x
      WHERE recorded IS DISTINCT FROM running`,
  },
  {
    name: 'versions_match_events',
    description: "every user's stored balance events run without a gap up to their balance version (docs/events.md)",
    sql: `
      SELECT a.owner_id, a.version, e.first, e.last, e.events
      FROM accounts a
      JOIN (SELECT user_id, min(sequence) AS first, max(sequence) AS last, count(*) AS events
            FROM balance_events WHERE part = 0 GROUP BY user_id) e ON e.user_id = a.owner_id
      WHERE a.kind = 'user_available' AND (a.version <> e.last OR e.last - e.first + 1 <> e.events)`,
  },
  {
    name: 'alert_counts_match_alerts',
    description: "every user's alert count (read instead of the alerts on each command) equals their registered alerts",
    sql: `
      SELECT a.owner_id, a.alert_count, coalesce(b.alerts, 0) AS alerts
      FROM accounts a
      LEFT JOIN (SELECT user_id, count(*) AS alerts FROM balance_alerts GROUP BY user_id) b ON b.user_id = a.owner_id
      WHERE a.kind = 'user_available' AND a.alert_count <> coalesce(b.alerts, 0)
      UNION ALL
      SELECT b.user_id, 0, count(*) FROM balance_alerts b
      WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.kind = 'user_available' AND a.owner_id = b.user_id)
      GROUP BY b.user_id`,
  },
  {
    name: 'no_negative_user_balance',
    description: 'no user balance is negative',
    sql: `SELECT id, kind, owner_id, balance FROM accounts WHERE kind IN ('user_available', 'user_reserved') AND balance < 0`,
  },
  {
    // Per service, not per row: a refund may take one stripe below zero (sql/0018).
    name: 'revenue_not_negative',
    description: "no service's revenue, summed over its stripes, is negative",
    sql: `SELECT owner_id AS service_id, sum(balance) AS revenue FROM accounts WHERE kind = 'revenue' GROUP BY owner_id HAVING sum(balance) < 0`,
  },
  {
    name: 'no_negative_incoming',
    description:
      'no unsettled-transfer (incoming) balance is negative; it briefly can be only in a database a replay is still rebuilding',
    sql: `SELECT id, owner_id, balance FROM accounts WHERE kind = 'user_incoming' AND balance < 0`,
  },
  {
    name: 'settles_match_transfers',
    description:
      "every settle completes a leg of an applied transfer: the same recipient, the same amount, out of the recipient's incoming",
    // `~settle:<transfer id>`, or `~settle:<transfer id>#<recipient>` for a leg of a split payment
    // (no id holds '#'); the leg is the transfer's posting into the settle's incoming account.
    sql: `
      SELECT s.id, s.user_id, sp.amount AS settled, t.id AS transfer_id, tp.amount AS transferred
      FROM commands s
      JOIN postings sp ON sp.command_id = s.id
      JOIN accounts sa ON sa.id = sp.debit_account_id
      LEFT JOIN commands t ON t.id = split_part(substr(s.id, ${'~settle:'.length + 1}), '#', 1)
                          AND t.type = 'transfer' AND t.status = 'applied'
      LEFT JOIN postings tp ON tp.command_id = t.id AND tp.credit_account_id = sa.id
      WHERE s.type = 'settle' AND s.status = 'applied'
        AND (t.id IS NULL OR tp.id IS NULL OR tp.amount <> sp.amount OR sa.kind <> 'user_incoming' OR sa.owner_id <> s.user_id
             OR (strpos(s.id, '#') > 0 AND split_part(s.id, '#', 2) <> s.user_id::text))`,
  },
  {
    // One leg, one settle: a transfer with one leg could be named by two settle ids
    // (`~settle:<id>` and `~settle:<id>#<recipient>`); the consumer refuses the second, and this
    // finds a leg settled twice all the same (its recipient would hold the money twice).
    name: 'leg_settled_once',
    description: 'no leg of a transfer is settled twice: at most one applied settle per transfer and recipient',
    sql: `
      SELECT split_part(substr(id, ${'~settle:'.length + 1}), '#', 1) AS transfer_id, user_id, array_agg(id ORDER BY id) AS settles
      FROM commands WHERE type = 'settle' AND status = 'applied'
      GROUP BY split_part(substr(id, ${'~settle:'.length + 1}), '#', 1), user_id
      HAVING count(*) > 1`,
  },
  {
    name: 'command_applied_once',
    description:
      'every applied command has exactly the postings its type makes (a transfer one per leg), and a rejected one none',
    sql: `
      SELECT c.id, c.type, c.status, count(p.id) AS postings
      FROM commands c LEFT JOIN postings p ON p.command_id = c.id
      GROUP BY c.id, c.type, c.status
      HAVING (c.status = 'rejected' AND count(p.id) <> 0)
          OR (c.status = 'applied' AND c.type IN (${NO_MONEY_COMMANDS}) AND count(p.id) <> 0)
          OR (c.status = 'applied' AND c.type NOT IN ('capture', 'transfer', ${NO_MONEY_COMMANDS}) AND count(p.id) <> 1)
          -- A transfer: one posting per leg, and one transfer_in history row per leg.
          OR (c.status = 'applied' AND c.type = 'transfer'
              AND (count(p.id) = 0
                   OR count(p.id) <> (SELECT count(*) FROM transactions t WHERE t.command_id = c.id AND t.transaction_type = 'transfer_in')))
          OR (c.status = 'applied' AND c.type = 'capture' AND count(p.id) NOT IN (1, 2))`,
  },
  {
    name: 'postings_reference_existing_rows',
    description: 'every posting names an existing command and two existing accounts',
    sql: `
      SELECT p.id, p.command_id, p.debit_account_id, p.credit_account_id
      FROM postings p
      LEFT JOIN commands c ON c.id = p.command_id
      LEFT JOIN accounts d ON d.id = p.debit_account_id
      LEFT JOIN accounts cr ON cr.id = p.credit_account_id
      WHERE c.id IS NULL OR d.id IS NULL OR cr.id IS NULL`,
  },
  {
    name: 'transactions_link_to_applied_commands',
    description: 'every user-facing transaction belongs to an applied command',
    sql: `SELECT t.id, t.command_id FROM transactions t LEFT JOIN commands c ON c.id = t.command_id WHERE c.id IS NULL OR c.status <> 'applied'`,
  },
  {
    name: 'reserved_equals_open_reservations',
    description: "each user's reserved balance equals the sum of their open reservations",
    sql: `
      SELECT a.owner_id AS user_id, a.balance, coalesce(r.open_total, 0) AS open_reservations
      FROM accounts a
      LEFT JOIN (SELECT user_id, sum(amount) AS open_total FROM reservations WHERE status = 'open' GROUP BY user_id) r ON r.user_id = a.owner_id
      WHERE a.kind = 'user_reserved' AND a.balance <> coalesce(r.open_total, 0)`,
  },
  {
    name: 'closed_reservations_accounted',
    description:
      'every closed reservation moved exactly its amount out of reserved: the captured part to revenue, the rest back',
    sql: `
      WITH moved AS (
        SELECT p.command_id, sum(p.amount) AS total, coalesce(sum(p.amount) FILTER (WHERE a.kind = 'revenue'), 0) AS to_revenue
        FROM postings p JOIN accounts a ON a.id = p.credit_account_id
        WHERE p.command_id IN (SELECT close_command_id FROM reservations WHERE status <> 'open')
        GROUP BY p.command_id
      )
      SELECT r.id, r.status, r.amount, r.captured_amount, coalesce(m.total, 0) AS moved, coalesce(m.to_revenue, 0) AS to_revenue
      FROM reservations r LEFT JOIN moved m ON m.command_id = r.close_command_id
      WHERE r.status <> 'open' AND (coalesce(m.total, 0) <> r.amount OR coalesce(m.to_revenue, 0) <> r.captured_amount)`,
  },
  {
    // The table keeps each reservation's refunded total within its capture (a CHECK); this ties
    // that total to the refunds' own history rows.
    name: 'refunds_match_orders',
    description: "every order's refund rows add up to what its captured reservations record as refunded",
    sql: `
      SELECT user_id, service_id, order_id, t.refunded AS refund_rows, r.refunded AS recorded
      FROM (SELECT user_id, service_id, order_id, sum(amount) AS refunded FROM transactions
            WHERE transaction_type = 'refund' GROUP BY user_id, service_id, order_id) t
      FULL JOIN (SELECT user_id, service_id, order_id, sum(refunded_amount) AS refunded FROM reservations
                 WHERE refunded_amount > 0 GROUP BY user_id, service_id, order_id) r
        USING (user_id, service_id, order_id)
      WHERE t.refunded IS DISTINCT FROM r.refunded`,
  },
  {
    name: 'frozen_matches_freezes',
    description: 'every account is frozen exactly when its last freeze or unfreeze (account_freezes) was a freeze',
    sql: `
      SELECT a.owner_id, a.frozen_reason, f.frozen AS last_change_froze
      FROM accounts a
      LEFT JOIN (SELECT DISTINCT ON (user_id) user_id, frozen FROM account_freezes ORDER BY user_id, id DESC) f
        ON f.user_id = a.owner_id
      WHERE a.kind = 'user_available' AND (a.frozen_reason IS NOT NULL) <> coalesce(f.frozen, false)`,
  },
  {
    name: 'external_payments_match_commands',
    description:
      'every deposit or withdrawal recorded for reconciliation is an applied command of that type, user and amount',
    sql: `
      SELECT p.command_id, p.service_id, p.external_ref, p.direction, p.amount FROM external_payments p
      LEFT JOIN commands c ON c.id = p.command_id
      WHERE c.id IS NULL OR c.status <> 'applied' OR c.type <> p.direction OR c.user_id <> p.user_id
         OR p.amount IS DISTINCT FROM (SELECT sum(x.amount) FROM postings x WHERE x.command_id = p.command_id)`,
  },
];

/** The checks of the history chain (verify-chain.ts): walked in code, not one query each. */
export const CHAIN_CHECKS = [
  {
    name: 'history_chain',
    description:
      "every user's balance events re-hash to the stored links, without a gap, and end at the head, version and balances on their account",
  },
  {
    name: 'history_rows_chained',
    description:
      'every history row is one that the chained balance event of its command shows, and every one it shows is there',
  },
  {
    name: 'anchor_holds',
    description:
      "the latest anchor's signature and root hold, and every head it anchored is still the link of that version",
  },
] as const;

/** Every check, in the order `npm run verify` prints them. */
export const ALL_CHECKS: readonly { readonly name: string; readonly description: string }[] = [
  ...CHECKS,
  ...CHAIN_CHECKS,
];

export interface Violation {
  readonly check: string;
  readonly description: string;
  readonly rows: readonly Record<string, unknown>[];
}

/**
 * Runs every check in one REPEATABLE READ snapshot, so a consumer writing meanwhile cannot make
 * two checks see different ledgers, and without the service's statement timeout: a full scan
 * of a large ledger legitimately takes longer than any request should.
 */
export function verifyLedger(pool: pg.Pool, anchorKeys?: ReadonlyMap<string, string>): Promise<Violation[]> {
  return withClient(pool, async (client) => {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const violations = await verifyInTransaction(client, anchorKeys);
    await client.query('COMMIT');
    return violations;
  });
}

/** The same checks inside the caller's open transaction (which they see as it is). */
export async function verifyInTransaction(
  client: pg.PoolClient,
  anchorKeys?: ReadonlyMap<string, string>,
): Promise<Violation[]> {
  await client.query('SET LOCAL statement_timeout = 0');
  // Every check reads whole tables; without statistics (autovacuum off, a fresh rebuild) the
  // planner may pick a nested loop over postings, which is quadratic. Hash joins are linear.
  await client.query('SET LOCAL enable_nestloop = off');
  const violations: Violation[] = [];
  for (const check of CHECKS) {
    const { rows } = await client.query(`${check.sql} LIMIT ${VIOLATIONS_SHOWN_MAX}`);
    if (rows.length > 0) violations.push({ check: check.name, description: check.description, rows });
  }
  const found = await verifyChains(client, VIOLATIONS_SHOWN_MAX, anchorKeys);
  const [chain, historyRows, anchor] = CHAIN_CHECKS;
  for (const [check, rows] of [
    [chain, found.chain],
    [historyRows, found.historyRows],
    [anchor, found.anchor],
  ] as const)
    if (rows.length > 0) violations.push({ check: check.name, description: check.description, rows });
  return violations;
}

/**
 * Money transferred and not yet settled: not a violation (settles follow within moments), but
 * what an operator checks when it stays high. See docs/operations.md.
 */
export async function unsettledTransfers(pool: pg.Pool): Promise<{ users: number; minor: bigint }> {
  const { rows } = await pool.query<{ users: number; total: string }>(
    "SELECT count(*)::int AS users, coalesce(sum(balance), 0)::text AS total FROM accounts WHERE kind = 'user_incoming' AND balance <> 0",
  );
  return { users: rows[0]!.users, minor: BigInt(rows[0]!.total) };
}
