/**
 * Planted faults for the bank test: each tampers with the ledger after the load in a way that
 * keeps every invariant of the sums `npm run verify` checks (balances equal postings, all sum to
 * zero, the balances recorded with postings equal their running sums), so only a checker that
 * judges by what clients saw can catch it, and the history chain (docs/history-chain.md) where
 * the tampering touched a chained event or row.
 *   erase-one   removes one acknowledged deposit: its command row, posting, history row and
 *               balance change;
 *   double-one  repeats one applied deposit under a new id (`<id>~double`);
 *   skew-one    moves 1 kopeck from one user's deposit to another's.
 *   lose-leg    undoes the settle of one leg of a split payment: its money goes back from the
 *               recipient's available balance to incoming, as if the credit had never arrived,
 *               and the settle is recorded rejected (verify sees only money still settling).
 * Also the reader of the final state the checker judges.
 */
import type pg from 'pg';
import type { DecidedCommand, FinalState } from './checker.ts';

export const SABOTAGE_KINDS = ['erase-one', 'double-one', 'skew-one', 'lose-leg'] as const;
export type SabotageKind = (typeof SABOTAGE_KINDS)[number];

/** What was tampered with: the checker's report must name it. */
export interface Sabotage {
  readonly kind: SabotageKind;
  readonly names: readonly string[];
}

interface Deposit {
  id: string;
  amount: string;
  user_id: string;
  debit: string;
  credit: string;
  available: string;
}

const SQL_DEPOSITS = `
  SELECT c.id, p.amount, c.user_id, p.debit_account_id AS debit, p.credit_account_id AS credit, a.balance AS available
  FROM commands c JOIN postings p ON p.command_id = c.id JOIN accounts a ON a.id = p.credit_account_id
  WHERE c.id = ANY($1::text[]) AND c.type = 'deposit' AND c.status = 'applied'
  ORDER BY c.id`;

/** Tampers inside the caller's transaction; `deposits` are ids of acknowledged deposits. */
export async function sabotage(db: pg.PoolClient, kind: SabotageKind, deposits: readonly string[]): Promise<Sabotage> {
  const planted = await tamper(db, kind, deposits);
  await recordBalancesAfterAgain(db);
  return planted;
}

async function tamper(db: pg.PoolClient, kind: SabotageKind, deposits: readonly string[]): Promise<Sabotage> {
  if (kind === 'lose-leg') return loseLeg(db);
  const rows = (await db.query<Deposit>(SQL_DEPOSITS, [deposits])).rows;
  if (kind === 'erase-one') {
    // One whose money is still there, so no balance goes negative (verify would see that).
    const victim = rows.find((d) => BigInt(d.available) >= BigInt(d.amount));
    if (!victim) throw new Error('no deposit to erase');
    await move(db, victim, -BigInt(victim.amount));
    await db.query('DELETE FROM postings WHERE command_id = $1', [victim.id]);
    await db.query('DELETE FROM transactions WHERE command_id = $1', [victim.id]);
    await db.query('DELETE FROM commands WHERE id = $1', [victim.id]);
    return { kind, names: [victim.id] };
  }
  if (kind === 'double-one') {
    const original = rows[0];
    if (!original) throw new Error('no deposit to double');
    const copy = `${original.id}~double`;
    await db.query(
      'INSERT INTO commands (id, fingerprint, type, user_id, status, code) SELECT $2, fingerprint, type, user_id, status, code FROM commands WHERE id = $1',
      [original.id, copy],
    );
    await db.query(
      'INSERT INTO postings (command_id, debit_account_id, credit_account_id, amount) SELECT $2, debit_account_id, credit_account_id, amount FROM postings WHERE command_id = $1',
      [original.id, copy],
    );
    await db.query(
      `INSERT INTO transactions (id, command_id, user_id, amount, transaction_type, comment)
       SELECT nextval('transactions_id_seq'), $2, user_id, amount, transaction_type, comment FROM transactions WHERE command_id = $1`,
      [original.id, copy],
    );
    await move(db, original, BigInt(original.amount));
    return { kind, names: [copy] };
  }
  const gainer = rows[0];
  const loser = rows.find((d) => d.user_id !== gainer?.user_id && BigInt(d.amount) >= 2n && BigInt(d.available) >= 1n);
  if (!gainer || !loser) throw new Error('no two deposits of different users to skew');
  for (const [deposit, delta] of [
    [gainer, 1n],
    [loser, -1n],
  ] as const) {
    await db.query('UPDATE postings SET amount = amount + $2 WHERE command_id = $1', [deposit.id, String(delta)]);
    await db.query('UPDATE transactions SET amount = amount + $2 WHERE command_id = $1', [deposit.id, String(delta)]);
    await move(db, deposit, delta);
  }
  return { kind, names: [`user ${gainer.user_id}`, `user ${loser.user_id}`] };
}

/** Undoes one split-payment leg's settle whose money is still in the recipient's available balance. */
async function loseLeg(db: pg.PoolClient): Promise<Sabotage> {
  const { rows } = await db.query<{ id: string; amount: string; debit: string; credit: string }>(`
    SELECT s.id, p.amount, p.debit_account_id AS debit, p.credit_account_id AS credit
    FROM commands s JOIN postings p ON p.command_id = s.id JOIN accounts a ON a.id = p.credit_account_id
    WHERE s.type = 'settle' AND s.status = 'applied' AND strpos(s.id, '#') > 0 AND a.balance >= p.amount
    ORDER BY s.id LIMIT 1`);
  const leg = rows[0];
  if (!leg) throw new Error('no settled split-payment leg to lose');
  await db.query('UPDATE accounts SET balance = balance - $2 WHERE id = $1', [leg.credit, leg.amount]);
  await db.query('UPDATE accounts SET balance = balance + $2 WHERE id = $1', [leg.debit, leg.amount]);
  await db.query('DELETE FROM postings WHERE command_id = $1', [leg.id]);
  await db.query("UPDATE commands SET status = 'rejected', code = 'unprocessable' WHERE id = $1", [leg.id]);
  return { kind: 'lose-leg', names: [leg.id.slice('~settle:'.length)] };
}

/**
 * Rewrites every posting's recorded balance after it from the running sums, in the order verify
 * reads them, as a careful forger would: otherwise verify's `balances_after_match_postings`
 * notices the tampering and the checker's part goes unproven.
 */
async function recordBalancesAfterAgain(db: pg.PoolClient): Promise<void> {
  await db.query(`
    WITH legs AS (
      SELECT l.posting_id, l.debit,
             sum(l.delta) OVER (PARTITION BY l.account_id ORDER BY l.created_at, l.posting_id) AS balance_after
      FROM (
        SELECT id AS posting_id, created_at, true AS debit, debit_account_id AS account_id, -amount AS delta FROM postings
        UNION ALL
        SELECT id, created_at, false, credit_account_id, amount FROM postings
      ) l
      JOIN accounts a ON a.id = l.account_id AND a.kind IN ('user_available', 'user_reserved')
    ), by_posting AS (
      SELECT posting_id, max(balance_after) FILTER (WHERE debit) AS debit_after,
             max(balance_after) FILTER (WHERE NOT debit) AS credit_after
      FROM legs GROUP BY posting_id
    )
    UPDATE postings p SET debit_balance_after = b.debit_after, credit_balance_after = b.credit_after
    FROM by_posting b WHERE b.posting_id = p.id`);
}

/** Changes a deposit's effect by `delta`: the user's available account gains, the external account pays. */
async function move(db: pg.PoolClient, deposit: Deposit, delta: bigint): Promise<void> {
  await db.query('UPDATE accounts SET balance = balance + $2 WHERE id = $1', [deposit.credit, String(delta)]);
  await db.query('UPDATE accounts SET balance = balance - $2 WHERE id = $1', [deposit.debit, String(delta)]);
}

/** The final state as the checker sees it: decided client commands, settles, balances, revenue. */
export async function readFinalState(db: pg.PoolClient | pg.Pool): Promise<FinalState> {
  const commands = await db.query<{
    id: string;
    status: 'applied' | 'rejected';
    postings: number;
    source_partition: number | null;
    source_offset: string | null;
  }>(
    `SELECT c.id, c.status, (SELECT count(*)::int FROM postings p WHERE p.command_id = c.id) AS postings, c.source_partition, c.source_offset
     FROM commands c WHERE c.type <> 'settle'`,
  );
  const settles = await db.query<{ transfer_id: string; amount: string }>(
    "SELECT substr(c.id, 9) AS transfer_id, p.amount FROM commands c JOIN postings p ON p.command_id = c.id WHERE c.type = 'settle' AND c.status = 'applied'",
  );
  const accounts = await db.query<{ kind: string; owner_id: string; balance: string }>(
    "SELECT kind, owner_id, balance FROM accounts WHERE kind <> 'external'",
  );
  const balances = new Map<number, { availableMinor: bigint; reservedMinor: bigint; incomingMinor: bigint }>();
  const revenue = new Map<number, bigint>();
  for (const row of accounts.rows) {
    const owner = Number(row.owner_id);
    if (row.kind === 'revenue') {
      // Summed over the service's stripes (one per partition).
      revenue.set(owner, (revenue.get(owner) ?? 0n) + BigInt(row.balance));
      continue;
    }
    const b = balances.get(owner) ?? { availableMinor: 0n, reservedMinor: 0n, incomingMinor: 0n };
    if (row.kind === 'user_available') b.availableMinor = BigInt(row.balance);
    if (row.kind === 'user_reserved') b.reservedMinor = BigInt(row.balance);
    if (row.kind === 'user_incoming') b.incomingMinor = BigInt(row.balance);
    balances.set(owner, b);
  }
  const decided = new Map<string, DecidedCommand>(
    commands.rows.map((r) => [
      r.id,
      {
        status: r.status,
        postings: r.postings,
        source: r.source_partition === null ? null : { partition: r.source_partition, offset: String(r.source_offset) },
      },
    ]),
  );
  return {
    commands: decided,
    settles: new Map(settles.rows.map((r) => [r.transfer_id, BigInt(r.amount)])),
    balances,
    revenue,
  };
}
