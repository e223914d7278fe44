/** The history rows (`transactions`) of commands already decided. */
import type pg from 'pg';

type Queryable = pg.PoolClient | pg.Pool;

const SQL_TRANSFER_CREDITS = `
  SELECT command_id, user_id, amount FROM transactions
  WHERE command_id = ANY($1::text[]) AND transaction_type = 'transfer_in' ORDER BY id`;

/**
 * What each of these transfers credited, and to whom (one credit per leg, in leg order), for
 * those in the database.
 */
export async function transferCredits(
  db: Queryable,
  transferIds: readonly string[],
): Promise<Map<string, Array<{ userId: number; amount: bigint }>>> {
  if (transferIds.length === 0) return new Map();
  const { rows } = await db.query<{ command_id: string; user_id: string; amount: string }>({
    name: 'ledger_transfer_credits',
    text: SQL_TRANSFER_CREDITS,
    values: [transferIds],
  });
  const credits = new Map<string, Array<{ userId: number; amount: bigint }>>();
  for (const row of rows) {
    const list = credits.get(row.command_id) ?? [];
    list.push({ userId: Number(row.user_id), amount: BigInt(row.amount) });
    credits.set(row.command_id, list);
  }
  return credits;
}

// A leg's credit is in flight while its settle is neither applied nor known to be in the log:
// the consumer's watermark of acknowledged settles (sql/0014) does not cover the transfer's offset.
const SQL_LEGS_IN_FLIGHT = `
  SELECT c.id AS command_id, t.user_id FROM commands c
  JOIN transactions t ON t.command_id = c.id AND t.transaction_type = 'transfer_in'
  WHERE c.id = ANY($1::text[]) AND c.type = 'transfer' AND c.status = 'applied'
    AND NOT EXISTS (SELECT 1 FROM settles_published p
                    WHERE p.source_partition = c.source_partition AND p.published_through >= c.source_offset)
    AND NOT EXISTS (SELECT 1 FROM commands s
                    WHERE s.id IN ('~settle:' || c.id, '~settle:' || c.id || '#' || t.user_id))`;

/**
 * The recipients of each applied transfer whose credit is still in flight: their settles are the
 * only ones a repeat of the transfer publishes again (one lost in a crash before it reached the log).
 */
export async function legsInFlight(db: Queryable, transferIds: readonly string[]): Promise<Map<string, number[]>> {
  if (transferIds.length === 0) return new Map();
  const { rows } = await db.query<{ command_id: string; user_id: string }>({
    name: 'ledger_legs_in_flight',
    text: SQL_LEGS_IN_FLIGHT,
    values: [transferIds],
  });
  const legs = new Map<string, number[]>();
  for (const row of rows) legs.set(row.command_id, [...(legs.get(row.command_id) ?? []), Number(row.user_id)]);
  return legs;
}

const SQL_TRANSACTIONS_OF_COMMANDS = `
  SELECT id, command_id, user_id, amount, transaction_type, service_id, order_id, counterparty_id, comment, created_at
  FROM transactions WHERE command_id = ANY($1::text[]) ORDER BY id`;

export interface StoredTransaction {
  readonly id: string;
  readonly command_id: string;
  readonly user_id: string;
  readonly amount: string;
  readonly transaction_type: string;
  readonly service_id: string | null;
  readonly order_id: string | null;
  readonly counterparty_id: string | null;
  readonly comment: string | null;
  readonly created_at: Date;
}

export async function transactionsOfCommands(
  db: Queryable,
  commandIds: readonly string[],
): Promise<StoredTransaction[]> {
  if (commandIds.length === 0) return [];
  const { rows } = await db.query<StoredTransaction>({
    name: 'ledger_transactions_of_commands',
    text: SQL_TRANSACTIONS_OF_COMMANDS,
    values: [commandIds],
  });
  return rows;
}
