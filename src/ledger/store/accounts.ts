/**
 * Accounts: loading (and locking) the ones a chunk needs, creating missing ones, and reading
 * users' balances.
 *
 * Locking: users' available and reserved rows are locked FOR NO KEY UPDATE in ascending id order
 * when loaded, which serializes every batch that touches the same user (a transfer reports the
 * recipient's balances) without deadlocking. Incoming, external and revenue accounts have no
 * lower bound to protect, so they are not read, only changed by a delta at the very end of the
 * transaction, again in id order (sql/0016_write_chunk.sql); that keeps their hot rows locked
 * for the shortest time. NO KEY UPDATE, not UPDATE, because inserting a posting takes KEY SHARE
 * on the accounts it references.
 */
import type pg from 'pg';
import type { AccountKey } from '../core.ts';
import { accountKey, isBoundedAccount, isStripedAccount, parseAccountKey, type AccountKind } from '../core.ts';

type Queryable = pg.PoolClient | pg.Pool;

export interface LoadedAccount {
  readonly id: number;
  readonly key: AccountKey;
  readonly balance: bigint;
  /** The user's balance version, on a user's available account (sql/0008_balance_events.sql). */
  readonly version: bigint;
  /** How many threshold alerts the user has, on a user's available account (sql/0010_balance_alerts.sql). */
  readonly alertCount: number;
}

// Accounts by natural key: kind, owner and stripe (sql/0015_account_stripes.sql; 0 for all
// but the external and revenue accounts, whose stripe is the partition of the batch).
const SQL_LOCK_USER_ACCOUNTS = `
  SELECT a.id, a.kind, a.owner_id, a.balance, a.version, a.alert_count
  FROM accounts a
  JOIN unnest($1::text[], $2::bigint[], $3::integer[]) AS k(kind, owner_id, stripe)
    ON a.kind = k.kind AND a.owner_id = k.owner_id AND a.stripe = k.stripe
  ORDER BY a.id
  FOR NO KEY UPDATE OF a`;
const SQL_FIND_ACCOUNTS = `
  SELECT a.id, a.kind, a.owner_id, a.balance, a.version, a.alert_count
  FROM accounts a
  JOIN unnest($1::text[], $2::bigint[], $3::integer[]) AS k(kind, owner_id, stripe)
    ON a.kind = k.kind AND a.owner_id = k.owner_id AND a.stripe = k.stripe`;
const SQL_CREATE_ACCOUNTS = `
  INSERT INTO accounts (kind, owner_id, stripe)
  SELECT kind, owner_id, stripe FROM unnest($1::text[], $2::bigint[], $3::integer[]) AS k(kind, owner_id, stripe)
  ORDER BY kind, owner_id, stripe
  ON CONFLICT (kind, owner_id, stripe) DO NOTHING
  RETURNING id, kind, owner_id, balance, version, alert_count`;

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

interface AccountRow {
  id: string;
  kind: AccountKind;
  owner_id: string;
  balance: string;
  version: string;
  alert_count: number;
}

/**
 * Loads (and, for users, locks) every account in `keys`, creating the missing ones. Returns
 * them by key.
 */
export async function loadAccounts(
  db: pg.PoolClient,
  keys: Iterable<AccountKey>,
  /** The batch's partition: the stripe of its external and revenue accounts. */
  stripe: number,
): Promise<Map<AccountKey, LoadedAccount>> {
  const all = [...new Set(keys)];
  const userKeys = all.filter(isBoundedAccount);
  const otherKeys = all.filter((key) => !isBoundedAccount(key));
  const found = new Map<AccountKey, LoadedAccount>();
  const query = (name: string, text: string, subset: AccountKey[]) =>
    queryAccounts(db, name, text, subset, stripe, found);
  await query('ledger_lock_user_accounts', SQL_LOCK_USER_ACCOUNTS, userKeys);
  await query('ledger_find_accounts', SQL_FIND_ACCOUNTS, otherKeys);
  const missing = all.filter((key) => !found.has(key));
  if (missing.length === 0) return found;
  await query('ledger_create_accounts', SQL_CREATE_ACCOUNTS, missing);
  // Another consumer may have created some of them between our read and our insert.
  const raced = missing.filter((key) => !found.has(key));
  await query('ledger_lock_user_accounts', SQL_LOCK_USER_ACCOUNTS, raced.filter(isBoundedAccount));
  await query(
    'ledger_find_accounts',
    SQL_FIND_ACCOUNTS,
    raced.filter((key) => !isBoundedAccount(key)),
  );
  return found;
}

async function queryAccounts(
  db: pg.PoolClient,
  name: string,
  text: string,
  keys: AccountKey[],
  stripe: number,
  into: Map<AccountKey, LoadedAccount>,
) {
  if (keys.length === 0) return;
  const parsed = keys.map(parseAccountKey);
  const values = [parsed.map((p) => p.kind), parsed.map((p) => p.ownerId), keys.map((key) => stripeOf(key, stripe))];
  const { rows } = await db.query<AccountRow>({ name, text, values });
  for (const row of rows) {
    const key = accountKey(row.kind, Number(row.owner_id));
    into.set(key, {
      id: Number(row.id),
      key,
      balance: BigInt(row.balance),
      version: BigInt(row.version),
      alertCount: row.alert_count,
    });
  }
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
