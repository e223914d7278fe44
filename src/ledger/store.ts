/**
 * The ledger's SQL: loading what a batch needs and writing back what it decided, with
 * set-based statements (one per table per batch) so a batch of thousands of commands costs a
 * dozen round trips.
 *
 * Locking: users' available and reserved rows are locked FOR NO KEY UPDATE in ascending id order
 * when loaded, which serializes every batch that touches the same user (a transfer reports the
 * recipient's balances) without deadlocking. Incoming, external and revenue accounts have no
 * lower bound to protect, so they are not read, only changed by a delta at the very end of the
 * transaction, again in id order; that keeps their hot rows locked for the shortest time. NO KEY
 * UPDATE, not UPDATE, because inserting a posting takes KEY SHARE on the accounts it references.
 */
import type pg from 'pg';
import type { AccountKey } from './core.ts';
import { accountKey, isBoundedAccount, isStripedAccount, parseAccountKey, type AccountKind } from './core.ts';
import type { AlertDirection } from '../commands/schema.ts';
import type { AlertState } from './alerts.ts';
import type { ReservationRecord } from './state.ts';

type Queryable = pg.PoolClient | pg.Pool;

export interface StoredCommand {
  readonly id: string;
  readonly fingerprint: string;
  readonly status: 'applied' | 'rejected';
  readonly code: string;
  readonly message: string;
}

const SQL_FIND_COMMANDS = `
  SELECT id, fingerprint, status, code, message FROM commands WHERE id = ANY($1::text[])`;

export async function findCommands(db: Queryable, ids: readonly string[]): Promise<Map<string, StoredCommand>> {
  if (ids.length === 0) return new Map();
  const { rows } = await db.query<StoredCommand>({
    name: 'ledger_find_commands',
    text: SQL_FIND_COMMANDS,
    values: [ids],
  });
  return new Map(rows.map((row) => [row.id, row]));
}

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

// The latest reservation of each order, one probe of reservations_by_order each. An open one is
// always the latest (a reserve is refused while one is open); a closed one matters only if an
// expire closed it: a capture or release of that order is then answered reservation_expired
// rather than reservation_not_found.
const SQL_LATEST_RESERVATIONS = `
  SELECT r.id, k.user_id, k.service_id, k.order_id, r.amount, r.status, r.reserve_command_id
  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS k(user_id, service_id, order_id)
  CROSS JOIN LATERAL (
    SELECT id, amount, status, reserve_command_id FROM reservations r
    WHERE r.user_id = k.user_id AND r.service_id = k.service_id AND r.order_id = k.order_id
    ORDER BY r.id DESC LIMIT 1
  ) r`;

export interface OrderKey {
  readonly userId: number;
  readonly serviceId: number;
  readonly orderId: number;
}

/** The open reservations of the given orders, and the reservationKey()s of those whose hold expired. */
export async function loadOrderReservations(
  db: pg.PoolClient,
  orders: readonly OrderKey[],
): Promise<{ open: ReservationRecord[]; expired: string[] }> {
  if (orders.length === 0) return { open: [], expired: [] };
  const values = [orders.map((o) => o.userId), orders.map((o) => o.serviceId), orders.map((o) => o.orderId)];
  const { rows } = await db.query<{
    id: string;
    user_id: string;
    service_id: string;
    order_id: string;
    amount: string;
    status: string;
    reserve_command_id: string;
  }>({ name: 'ledger_latest_reservations', text: SQL_LATEST_RESERVATIONS, values });
  const open = rows
    .filter((row) => row.status === 'open')
    .map(
      (row): ReservationRecord => ({
        id: Number(row.id),
        userId: Number(row.user_id),
        serviceId: Number(row.service_id),
        orderId: Number(row.order_id),
        amount: BigInt(row.amount),
        // Stored as expires_at when it was opened; deciding never needs it again.
        expiresInS: null,
        status: 'open',
        capturedAmount: 0n,
        reserveCommandId: row.reserve_command_id,
        closeCommandId: null,
      }),
    );
  const expired = rows
    .filter((row) => row.status === 'expired')
    .map((row) => `${row.user_id}:${row.service_id}:${row.order_id}`);
  return { open, expired };
}

// The time also as text with microseconds: a JS Date keeps milliseconds only, and a stamp cut
// to the millisecond could fall before an instant read just before this chunk, so a balance at
// that instant would count this chunk (the random-stream test of balances at an instant caught it).
const SQL_ALLOCATE_TRANSACTION_IDS = `
  SELECT t.now, to_char(t.now AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS stamp,
         ARRAY(SELECT nextval('transactions_id_seq') FROM generate_series(1, $1::int)) AS ids
  FROM (SELECT clock_timestamp() AS now) t`;

/**
 * The chunk's timestamp and `count` transaction ids, in one round trip. The timestamp is taken
 * now, after the chunk holds its user accounts' locks, not at the transaction's start: a later
 * chunk of the same account then never gets an earlier time (sql/0006_balances_at.sql), and
 * every posting and history row of the chunk gets this one time.
 */
export async function allocateTransactionIds(
  db: pg.PoolClient,
  count: number,
): Promise<{ now: Date; stamp: string; ids: number[] }> {
  const { rows } = await db.query<{ now: Date; stamp: string; ids: string[] }>({
    name: 'ledger_allocate_ids',
    text: SQL_ALLOCATE_TRANSACTION_IDS,
    values: [count],
  });
  const row = rows[0]!;
  return { now: row.now, stamp: row.stamp, ids: row.ids.map(Number) };
}

export interface NewCommandRow {
  readonly id: string;
  readonly fingerprint: string;
  readonly type: string;
  readonly userId: number;
  readonly status: 'applied' | 'rejected';
  readonly code: string;
  readonly message: string;
  readonly partition: number | null;
  readonly offset: string | null;
  readonly principal: string;
}

const SQL_INSERT_COMMANDS = `
  INSERT INTO commands (id, fingerprint, type, user_id, status, code, message, source_partition, source_offset, principal)
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::int[], $9::bigint[], $10::text[])`;

export async function insertCommands(db: pg.PoolClient, rows: readonly NewCommandRow[]): Promise<void> {
  if (rows.length === 0) return;
  await db.query({
    name: 'ledger_insert_commands',
    text: SQL_INSERT_COMMANDS,
    values: [
      rows.map((r) => r.id),
      rows.map((r) => r.fingerprint),
      rows.map((r) => r.type),
      rows.map((r) => r.userId),
      rows.map((r) => r.status),
      rows.map((r) => r.code),
      rows.map((r) => r.message),
      rows.map((r) => r.partition),
      rows.map((r) => r.offset),
      rows.map((r) => r.principal),
    ],
  });
}

const SQL_INSERT_COMMAND_IF_NEW = `
  INSERT INTO commands (id, fingerprint, type, user_id, status, code, message, source_partition, source_offset, principal)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
  ON CONFLICT (id) DO NOTHING`;

/** Inserts one command row on its own (no postings); false if the id was already decided. */
export async function insertCommandIfNew(db: Queryable, row: NewCommandRow): Promise<boolean> {
  const result = await db.query({
    name: 'ledger_insert_command_if_new',
    text: SQL_INSERT_COMMAND_IF_NEW,
    values: [
      row.id,
      row.fingerprint,
      row.type,
      row.userId,
      row.status,
      row.code,
      row.message,
      row.partition,
      row.offset,
      row.principal,
    ],
  });
  return result.rowCount === 1;
}

export interface PostingRow {
  readonly commandId: string;
  readonly debitAccountId: number;
  readonly creditAccountId: number;
  readonly amount: bigint;
  /** The debit side's balance right after this posting, for a user's available or reserved account. */
  readonly debitBalanceAfter: bigint | null;
  readonly creditBalanceAfter: bigint | null;
  /** The version the command took its user to (sql/0011_version_at.sql). */
  readonly versionAfter: bigint;
}

const SQL_INSERT_POSTINGS = `
  INSERT INTO postings
    (command_id, debit_account_id, credit_account_id, amount, debit_balance_after, credit_balance_after, version_after, created_at)
  SELECT k.*, $8::timestamptz
  FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) AS k`;

/** `writtenAt`: the chunk's one timestamp (see allocateTransactionIds). */
export async function insertPostings(db: pg.PoolClient, rows: readonly PostingRow[], writtenAt: string): Promise<void> {
  if (rows.length === 0) return;
  await db.query({
    name: 'ledger_insert_postings',
    text: SQL_INSERT_POSTINGS,
    values: [
      rows.map((r) => r.commandId),
      rows.map((r) => r.debitAccountId),
      rows.map((r) => r.creditAccountId),
      rows.map((r) => String(r.amount)),
      rows.map((r) => (r.debitBalanceAfter === null ? null : String(r.debitBalanceAfter))),
      rows.map((r) => (r.creditBalanceAfter === null ? null : String(r.creditBalanceAfter))),
      rows.map((r) => String(r.versionAfter)),
      writtenAt,
    ],
  });
}

export interface TransactionRow {
  readonly id: number;
  readonly commandId: string;
  readonly userId: number;
  readonly amount: bigint;
  readonly type: string;
  readonly serviceId: number | null;
  readonly orderId: number | null;
  readonly counterpartyId: number | null;
  readonly comment: string | null;
}

const SQL_INSERT_TRANSACTIONS = `
  INSERT INTO transactions (id, command_id, user_id, amount, transaction_type, service_id, order_id, counterparty_id, comment, created_at)
  SELECT k.*, $10::timestamptz FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::bigint[], $8::bigint[], $9::text[]) AS k`;

/** `writtenAt`: the chunk's one timestamp (see allocateTransactionIds). */
export async function insertTransactions(
  db: pg.PoolClient,
  rows: readonly TransactionRow[],
  writtenAt: string,
): Promise<void> {
  if (rows.length === 0) return;
  await db.query({
    name: 'ledger_insert_transactions',
    text: SQL_INSERT_TRANSACTIONS,
    values: [
      rows.map((r) => r.id),
      rows.map((r) => r.commandId),
      rows.map((r) => r.userId),
      rows.map((r) => String(r.amount)),
      rows.map((r) => r.type),
      rows.map((r) => r.serviceId),
      rows.map((r) => r.orderId),
      rows.map((r) => r.counterpartyId),
      rows.map((r) => r.comment),
      writtenAt,
    ],
  });
}

const SQL_INSERT_RESERVATIONS = `
  INSERT INTO reservations (user_id, service_id, order_id, amount, status, captured_amount, reserve_command_id, close_command_id, closed_at, expires_at)
  SELECT k.user_id, k.service_id, k.order_id, k.amount, k.status, k.captured_amount, k.reserve_command_id, k.close_command_id,
         CASE WHEN k.status = 'open' THEN NULL ELSE now() END,
         now() + make_interval(secs => k.expires_in_s)
  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], $8::text[], $9::integer[])
    AS k(user_id, service_id, order_id, amount, status, captured_amount, reserve_command_id, close_command_id, expires_in_s)`;
const SQL_CLOSE_RESERVATIONS = `
  UPDATE reservations r
  SET status = k.status, captured_amount = k.captured_amount, close_command_id = k.close_command_id, closed_at = now()
  FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[]) AS k(id, status, captured_amount, close_command_id)
  WHERE r.id = k.id AND r.status = 'open'`;

/** Writes reservations the batch opened (possibly already closed) and closes loaded ones. */
export async function writeReservations(db: pg.PoolClient, changed: readonly ReservationRecord[]): Promise<void> {
  const created = changed.filter((r) => r.id === null);
  const closed = changed.filter((r) => r.id !== null);
  if (created.length > 0) {
    await db.query({
      name: 'ledger_insert_reservations',
      text: SQL_INSERT_RESERVATIONS,
      values: [
        created.map((r) => r.userId),
        created.map((r) => r.serviceId),
        created.map((r) => r.orderId),
        created.map((r) => String(r.amount)),
        created.map((r) => r.status),
        created.map((r) => String(r.capturedAmount)),
        created.map((r) => r.reserveCommandId),
        created.map((r) => r.closeCommandId),
        created.map((r) => r.expiresInS),
      ],
    });
  }
  if (closed.length > 0) {
    const result = await db.query({
      name: 'ledger_close_reservations',
      text: SQL_CLOSE_RESERVATIONS,
      values: [
        closed.map((r) => r.id),
        closed.map((r) => r.status),
        closed.map((r) => String(r.capturedAmount)),
        closed.map((r) => r.closeCommandId),
      ],
    });
    if (result.rowCount !== closed.length)
      throw new Error(`closed ${result.rowCount} of ${closed.length} reservations`);
  }
}

// Balance and version in one update: a second update of the same rows cost about 12% of the
// mixed pass's throughput in bench:consumer (4,676 against 5,305 commands/s).
const SQL_SET_BALANCES = `
  UPDATE accounts a SET balance = k.balance, version = coalesce(k.version, a.version), updated_at = now()
  FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS k(id, balance, version)
  WHERE a.id = k.id`;
// Lock, then add, in one round trip. The order is what prevents deadlocks between partitions
// (they share incoming accounts): the CTE's plan is LockRows over rows in id order (EXPLAIN:
// an index scan of the primary key, which reads `= ANY` in key order; a Sort otherwise), so
// rows are locked one by one in id order as the join pulls them, and the join pulls every row
// (each delta needs its row). An UPDATE ... FROM unnest alone would lock in scan order.
const SQL_ADD_TO_BALANCES = `
  WITH locked AS (SELECT id FROM accounts WHERE id = ANY($1::bigint[]) ORDER BY id FOR NO KEY UPDATE)
  UPDATE accounts a SET balance = a.balance + k.delta, updated_at = now()
  FROM locked l JOIN unnest($1::bigint[], $2::bigint[]) AS k(id, delta) ON k.id = l.id
  WHERE a.id = l.id`;

/**
 * Writes the new balances: absolute values for the locked bounded accounts, deltas for the
 * external and revenue accounts (locked here, last, in id order).
 */
export async function writeBalances(
  db: pg.PoolClient,
  changes: ReadonlyArray<{ id: number; key: AccountKey; balance: bigint; delta: bigint; version?: bigint }>,
): Promise<void> {
  const users = changes.filter((c) => isBoundedAccount(c.key));
  const others = changes.filter((c) => !isBoundedAccount(c.key)).sort((a, b) => a.id - b.id);
  if (users.length > 0) {
    await db.query({
      name: 'ledger_set_balances',
      text: SQL_SET_BALANCES,
      values: [
        users.map((c) => c.id),
        users.map((c) => String(c.balance)),
        users.map((c) => (c.version === undefined ? null : String(c.version))),
      ],
    });
  }
  if (others.length > 0) {
    const ids = others.map((c) => c.id);
    await db.query({
      name: 'ledger_lock_and_add_to_balances',
      text: SQL_ADD_TO_BALANCES,
      values: [ids, others.map((c) => String(c.delta))],
    });
  }
}

export interface BalanceEventRow {
  readonly userId: number;
  readonly sequence: bigint;
  /** 0 for the balance event, 1, 2, ... for the threshold_crossed events the same command fired. */
  readonly part: number;
  readonly commandId: string;
  readonly payload: string;
}

// One json parameter for the whole batch, payloads embedded as they are: a text[] of payloads
// made node escape, and PostgreSQL unescape, every quote of every payload. A `json` value keeps
// its text exactly (unlike jsonb), so the stored payload is byte for byte the one first sent,
// as a repeat must send it again.
const SQL_INSERT_BALANCE_EVENTS = `
  INSERT INTO balance_events (user_id, sequence, part, command_id, payload)
  SELECT e.user_id, e.sequence, e.part, e.command_id, e.payload::text
  FROM json_to_recordset($1::json) AS e(user_id bigint, sequence bigint, part smallint, command_id text, payload json)`;
const SQL_BALANCE_EVENTS_OF_COMMANDS = `
  SELECT user_id, sequence, part, command_id, payload FROM balance_events
  WHERE command_id = ANY($1::text[]) ORDER BY user_id, sequence, part`;

/** Stores a batch's events (the versions they took users to are written with the balances). */
export async function insertBalanceEvents(db: pg.PoolClient, events: readonly BalanceEventRow[]): Promise<void> {
  if (events.length === 0) return;
  await db.query({
    name: 'ledger_insert_balance_events_json',
    text: SQL_INSERT_BALANCE_EVENTS,
    values: [eventRowsJson(events)],
  });
}

/** The rows as one JSON array; each payload is already JSON text (events.ts), so it goes in as it is. */
export function eventRowsJson(events: readonly BalanceEventRow[]): string {
  const rows = events.map(
    (e) =>
      `{"user_id":${e.userId},"sequence":${e.sequence},"part":${e.part},"command_id":${JSON.stringify(e.commandId)},"payload":${e.payload}}`,
  );
  return `[${rows.join(',')}]`;
}

/** The stored events of commands decided earlier, to send again with their repeats. */
export async function balanceEventsOfCommands(
  db: Queryable,
  commandIds: readonly string[],
): Promise<BalanceEventRow[]> {
  if (commandIds.length === 0) return [];
  const { rows } = await db.query<{
    user_id: string;
    sequence: string;
    part: number;
    command_id: string;
    payload: string;
  }>({
    name: 'ledger_balance_events_of_commands',
    text: SQL_BALANCE_EVENTS_OF_COMMANDS,
    values: [commandIds],
  });
  return rows.map((r) => ({
    userId: Number(r.user_id),
    sequence: BigInt(r.sequence),
    part: r.part,
    commandId: r.command_id,
    payload: r.payload,
  }));
}

const SQL_LOAD_ALERTS = `
  SELECT id, user_id, direction, threshold, past FROM balance_alerts
  WHERE user_id = ANY($1::bigint[])`;
const SQL_UPSERT_ALERTS = `
  INSERT INTO balance_alerts (id, user_id, direction, threshold, past)
  SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::boolean[])
  ON CONFLICT (id) DO UPDATE SET past = excluded.past`;
const SQL_DELETE_ALERTS = 'DELETE FROM balance_alerts WHERE id = ANY($1::text[])';
const SQL_SET_ALERT_COUNTS = `
  UPDATE accounts a SET alert_count = k.count
  FROM unnest($1::bigint[], $2::integer[]) AS k(owner_id, count)
  WHERE a.kind = 'user_available' AND a.owner_id = k.owner_id`;

/** The threshold alerts of users whose (locked) available account says they have some. */
export async function loadAlerts(db: pg.PoolClient, userIds: readonly number[]): Promise<AlertState[]> {
  if (userIds.length === 0) return [];
  const { rows } = await db.query<{
    id: string;
    user_id: string;
    direction: AlertDirection;
    threshold: string;
    past: boolean;
  }>({ name: 'ledger_load_alerts', text: SQL_LOAD_ALERTS, values: [userIds] });
  return rows.map((r) => ({
    id: r.id,
    userId: Number(r.user_id),
    direction: r.direction,
    threshold: BigInt(r.threshold),
    past: r.past,
  }));
}

/** Writes what a batch did to alerts (LedgerState.alertChanges). */
export async function writeAlerts(
  db: pg.PoolClient,
  changes: { upserts: readonly AlertState[]; deletes: readonly string[]; counts: ReadonlyMap<number, number> },
): Promise<void> {
  const { upserts, deletes, counts } = changes;
  if (upserts.length > 0) {
    await db.query({
      name: 'ledger_upsert_alerts',
      text: SQL_UPSERT_ALERTS,
      values: [
        upserts.map((a) => a.id),
        upserts.map((a) => a.userId),
        upserts.map((a) => a.direction),
        upserts.map((a) => String(a.threshold)),
        upserts.map((a) => a.past),
      ],
    });
  }
  if (deletes.length > 0) await db.query({ name: 'ledger_delete_alerts', text: SQL_DELETE_ALERTS, values: [deletes] });
  if (counts.size > 0) {
    await db.query({
      name: 'ledger_set_alert_counts',
      text: SQL_SET_ALERT_COUNTS,
      values: [[...counts.keys()], [...counts.values()]],
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

const SQL_TRANSFER_CREDITS = `
  SELECT command_id, user_id, amount FROM transactions
  WHERE command_id = ANY($1::text[]) AND transaction_type = 'transfer_in'`;

/** What each of these transfers credited, and to whom, for those in the database. */
export async function transferCredits(
  db: Queryable,
  transferIds: readonly string[],
): Promise<Map<string, { userId: number; amount: bigint }>> {
  if (transferIds.length === 0) return new Map();
  const { rows } = await db.query<{ command_id: string; user_id: string; amount: string }>({
    name: 'ledger_transfer_credits',
    text: SQL_TRANSFER_CREDITS,
    values: [transferIds],
  });
  return new Map(rows.map((row) => [row.command_id, { userId: Number(row.user_id), amount: BigInt(row.amount) }]));
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
