/**
 * Accounts: creating the shared ones a chunk needs before its transaction, and reading users'
 * balances. A chunk loads and locks its accounts in ledger_load_chunk (load-chunk.ts).
 *
 * Locking: users' available and reserved rows are locked FOR NO KEY UPDATE in ascending id order
 * when loaded, which serializes every batch that touches the same user (a transfer reports the
 * recipient's balances) without deadlocking. Incoming, external and revenue accounts have no
 * lower bound to protect, so they are not locked, only changed by a delta at the very end of the
 * transaction, again in id order (sql/functions/ledger_commit_chunk.sql); that keeps their hot rows locked
 * for the shortest time. NO KEY UPDATE, not UPDATE, because inserting a posting takes KEY SHARE
 * on the accounts it references.
 */
import type pg from 'pg';
import type { AccountKey } from '../core.ts';
import { isStripedAccount, parseAccountKey } from '../core.ts';

type Queryable = pg.PoolClient | pg.Pool;

export interface LoadedAccount {
  readonly id: number;
  readonly key: AccountKey;
  readonly balance: bigint;
  /** The user's balance version, on a user's available account (sql/0008_balance_events.sql). */
  readonly version: bigint;
  /** How many threshold alerts the user has, on a user's available account (sql/0010_balance_alerts.sql). */
  readonly alertCount: number;
  /** Why the user's account is frozen, on a user's available account; null when it is not (sql/0018). */
  readonly frozenReason: string | null;
  /** The hash the user's history chain ends at, as hex, on a user's available account; null before their first event (sql/0027). */
  readonly chainHash: string | null;
}

const SQL_CREATE_MISSING_ACCOUNTS = `
  INSERT INTO accounts (kind, owner_id)
  SELECT k.kind, k.owner_id FROM unnest($1::text[], $2::bigint[]) AS k(kind, owner_id)
  WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.kind = k.kind AND a.owner_id = k.owner_id AND a.stripe = 0)
  ORDER BY k.kind, k.owner_id
  ON CONFLICT (kind, owner_id, stripe) DO NOTHING`;

/** The stripe an account of this key lives in, for a batch of partition `stripe`. */
export function stripeOf(key: AccountKey, stripe: number): number {
  return isStripedAccount(key) ? stripe : 0;
}

/**
 * Creates accounts a batch will need and other partitions may be creating too, in a statement
 * of its own (autocommit), before the batch's transaction. Inside that long transaction, inserting an account another partition's
 * open transaction has just inserted would wait for that whole transaction to end: transfers
 * create recipients' incoming accounts from every partition, and that wait was most of the
 * time of concurrent batches. An empty account changes no balance, so creating it early, even
 * for a command that is then rejected, is harmless.
 */
export async function createMissingAccounts(db: Queryable, keys: Iterable<AccountKey>): Promise<void> {
  const parsed = [...new Set(keys)].filter((key) => !isStripedAccount(key)).map(parseAccountKey);
  if (parsed.length === 0) return;
  await db.query({
    name: 'ledger_create_missing_accounts',
    text: SQL_CREATE_MISSING_ACCOUNTS,
    values: [parsed.map((p) => p.kind), parsed.map((p) => p.ownerId)],
  });
}

const SQL_USER_BALANCES = `
  SELECT owner_id, kind, balance FROM accounts
  WHERE owner_id = ANY($1::bigint[]) AND kind IN ('user_available', 'user_reserved', 'user_incoming')`;

/** Users' available, reserved and incoming balances, unlocked, as the caller's transaction sees them. */
export async function userBalances(
  db: Queryable,
  userIds: readonly number[],
): Promise<Array<{ userId: number; kind: string; balance: bigint }>> {
  const { rows } = await db.query<{ owner_id: string; kind: string; balance: string }>({
    name: 'ledger_user_balances',
    text: SQL_USER_BALANCES,
    values: [userIds],
  });
  return rows.map((r) => ({ userId: Number(r.owner_id), kind: r.kind, balance: BigInt(r.balance) }));
}
