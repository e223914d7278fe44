/**
 * `npm run verify`'s checks of the history chain (docs/history-chain.md), which SQL alone cannot
 * make: every user's events re-hashed link by link, every history row held against the chained
 * event of its command, and the latest anchor's signature, root and heads. Users are read
 * `USERS_PER_READ` at a time, so memory holds one page of users' events.
 */
import type pg from 'pg';
import { formatMinor } from '../commands/money.ts';
import { verifyAnchorSignature } from './anchor-signing.ts';
import { anchorMessage, GENESIS_HASH_HEX, leafHash, merkleRoot, type StoredLink, walkChain } from './chain.ts';
import { anchorLeaves, latestAnchor } from './store/anchors.ts';

export const USERS_PER_READ = 500;

/** What each chain check found: at most `shownMax` rows each. */
export interface ChainFindings {
  readonly chain: Record<string, unknown>[];
  readonly historyRows: Record<string, unknown>[];
  readonly anchor: Record<string, unknown>[];
}

interface UserRow {
  user_id: string;
  version: string;
  chain_hash: string | null;
  available: string;
  reserved: string;
}

interface EventRow {
  user_id: string;
  sequence: string;
  part: number;
  command_id: string;
  payload: string;
  hash: string | null;
}

interface HistoryRow {
  command_id: string;
  user_id: string;
  transaction_type: string;
  amount: string;
  service_id: string | null;
  order_id: string | null;
  counterparty_id: string | null;
  comment: string | null;
}

const SQL_USERS = `
  SELECT a.owner_id::text AS user_id, a.version::text, encode(a.chain_hash, 'hex') AS chain_hash,
         a.balance::text AS available, coalesce(r.balance, 0)::text AS reserved
  FROM accounts a
  LEFT JOIN accounts r ON r.kind = 'user_reserved' AND r.owner_id = a.owner_id AND r.stripe = 0
  WHERE a.kind = 'user_available' AND a.stripe = 0 AND a.owner_id > $1
  ORDER BY a.owner_id LIMIT $2`;
const SQL_EVENTS = `
  -- Ordered by the numbers: the text columns of the same names would sort "10" before "2".
  SELECT e.user_id::text, e.sequence::text, e.part, e.command_id, e.payload, encode(e.hash, 'hex') AS hash
  FROM balance_events e WHERE e.user_id = ANY($1::bigint[]) ORDER BY e.user_id, e.sequence, e.part`;
const SQL_HISTORY = `
  SELECT command_id, user_id::text, transaction_type, amount::text, service_id::text, order_id::text,
         counterparty_id::text, comment
  FROM transactions WHERE command_id = ANY($1::text[])`;
/** History rows whose command has no balance event at all: made outside the write path. */
const SQL_UNCHAINED_ROWS = `
  SELECT t.id, t.command_id, t.user_id, t.transaction_type, t.amount FROM transactions t
  WHERE NOT EXISTS (SELECT 1 FROM balance_events e WHERE e.command_id = t.command_id AND e.part = 0)
    -- A ledger older than balance events (sql/0008) keeps rows that no event shows: sql/0027 noted where they end.
    AND t.id >= (SELECT legacy_rows_below FROM history_chain_start)`;

/**
 * `publicKeys`: the anchor public keys (base64) to trust, by key id; an anchor signed with any
 * other key is a finding. Without them (tests, internal callers), signatures are not checked.
 */
export async function verifyChains(
  client: pg.PoolClient,
  shownMax: number,
  publicKeys?: ReadonlyMap<string, string>,
): Promise<ChainFindings> {
  const findings: ChainFindings = { chain: [], historyRows: [], anchor: [] };
  let after = -1;
  for (;;) {
    const users = (await client.query<UserRow>(SQL_USERS, [after, USERS_PER_READ])).rows;
    if (users.length === 0) break;
    after = Number(users.at(-1)!.user_id);
    const events = (await client.query<EventRow>(SQL_EVENTS, [users.map((u) => u.user_id)])).rows;
    checkChains(users, events, findings.chain);
    await checkHistoryRows(client, events, findings.historyRows);
  }
  const unchained = await client.query(`${SQL_UNCHAINED_ROWS} LIMIT ${shownMax}`);
  for (const row of unchained.rows)
    findings.historyRows.push({ ...row, differs: 'the row belongs to no chained event' });
  findings.anchor.push(...(await checkLatestAnchor(client, shownMax, publicKeys)));
  return {
    chain: findings.chain.slice(0, shownMax),
    historyRows: findings.historyRows.slice(0, shownMax),
    anchor: findings.anchor.slice(0, shownMax),
  };
}

/** Each user's links re-hashed, then the head and balances on their account held against the last one. */
function checkChains(users: readonly UserRow[], events: readonly EventRow[], into: Record<string, unknown>[]): void {
  const linksByUser = groupLinks(events);
  for (const user of users) {
    const userId = Number(user.user_id);
    const links = linksByUser.get(userId) ?? [];
    const walked = walkChain(userId, links, { version: null, hashHex: GENESIS_HASH_HEX });
    if ('broken' in walked) {
      into.push({ user_id: userId, version: String(walked.broken.version), differs: walked.broken.differs });
      continue;
    }
    const problem = headProblem(user, links, walked.head);
    if (problem) into.push({ user_id: userId, version: user.version, differs: problem });
  }
}

function headProblem(
  user: UserRow,
  links: readonly StoredLink[],
  head: { version: bigint | null; hashHex: string },
): string | null {
  const stored = user.chain_hash ?? GENESIS_HASH_HEX;
  if (stored !== head.hashHex) return `the account's head is ${stored}, the chain ends at ${head.hashHex}`;
  if (head.version !== null && String(head.version) !== user.version)
    return `the account is at version ${user.version}, the chain ends at version ${head.version}`;
  const last = links.at(-1);
  if (!last) return null;
  const balances = (JSON.parse(last.payloads[0]!) as { balances: { available: string; reserved: string } }).balances;
  const held = { available: formatMinor(BigInt(user.available)), reserved: formatMinor(BigInt(user.reserved)) };
  if (balances.available !== held.available || balances.reserved !== held.reserved)
    return `the balances are ${held.available} available, ${held.reserved} reserved; the last chained event says ${balances.available}, ${balances.reserved}`;
  return null;
}

function groupLinks(events: readonly EventRow[]): Map<number, StoredLink[]> {
  const byUser = new Map<number, StoredLink[]>();
  for (const e of events) {
    const userId = Number(e.user_id);
    const links = byUser.get(userId) ?? [];
    byUser.set(userId, links);
    const last = links.at(-1);
    if (e.part > 0 && last && String(last.version) === e.sequence) (last.payloads as string[]).push(e.payload);
    else links.push({ version: BigInt(e.sequence), payloads: [e.payload], hashHex: e.part === 0 ? e.hash : null });
  }
  return byUser;
}

interface ChainedTransaction {
  readonly transaction_type: string;
  readonly amount: string;
  readonly service_id: number | null;
  readonly order_id: number | null;
  readonly counterparty_id: number | null;
  readonly comment: string | null;
}

/**
 * The history rows these events' commands should have: each event's own rows, and for every
 * transfer_out the recipient's transfer_in (which the sender's event names: counterparty,
 * amount, comment). A settle's event repeats the transfer_in and has no rows of its own.
 */
export function expectedHistoryRows(
  events: readonly { user_id: string; part: number; command_id: string; payload: string }[],
): string[] {
  const rows: string[] = [];
  for (const e of events) {
    if (e.part !== 0) continue;
    const payload = JSON.parse(e.payload) as { type: string; transactions?: ChainedTransaction[] };
    if (payload.type === 'transfer_in') continue;
    for (const t of payload.transactions ?? []) {
      rows.push(historyKey(e.command_id, e.user_id, t));
      if (t.transaction_type === 'transfer_out' && t.counterparty_id !== null)
        rows.push(
          historyKey(e.command_id, String(t.counterparty_id), {
            ...t,
            transaction_type: 'transfer_in',
            amount: t.amount.replace(/^-/, ''),
            counterparty_id: Number(e.user_id),
          }),
        );
    }
  }
  return rows;
}

function historyKey(commandId: string, userId: string, t: ChainedTransaction): string {
  return JSON.stringify([
    commandId,
    userId,
    t.transaction_type,
    t.amount,
    t.service_id === null ? null : String(t.service_id),
    t.order_id === null ? null : String(t.order_id),
    t.counterparty_id === null ? null : String(t.counterparty_id),
    t.comment,
  ]);
}

async function checkHistoryRows(
  client: pg.PoolClient,
  events: readonly EventRow[],
  into: Record<string, unknown>[],
): Promise<void> {
  const commandIds = [...new Set(events.filter((e) => e.part === 0).map((e) => e.command_id))];
  if (commandIds.length === 0) return;
  const expected = countKeys(expectedHistoryRows(events));
  const actual = countKeys(
    (await client.query<HistoryRow>(SQL_HISTORY, [commandIds])).rows.map((r) =>
      historyKey(r.command_id, r.user_id, {
        transaction_type: r.transaction_type,
        amount: formatMinor(BigInt(r.amount)),
        service_id: r.service_id === null ? null : Number(r.service_id),
        order_id: r.order_id === null ? null : Number(r.order_id),
        counterparty_id: r.counterparty_id === null ? null : Number(r.counterparty_id),
        comment: r.comment,
      }),
    ),
  );
  for (const [key, n] of actual)
    if ((expected.get(key) ?? 0) < n)
      into.push({ row: JSON.parse(key), differs: 'a history row no chained event shows' });
  for (const [key, n] of expected)
    if ((actual.get(key) ?? 0) < n)
      into.push({ row: JSON.parse(key), differs: 'a chained row is missing from the history' });
}

function countKeys(keys: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1);
  return counts;
}

/**
 * The latest anchor: its signature against the public key its key id names (the one this
 * process signs with; `publicKeys` by key id), its root against its leaves, and each leaf
 * against the link of that version in today's chain: a chain rewritten since shows here.
 */
async function checkLatestAnchor(
  client: pg.PoolClient,
  shownMax: number,
  publicKeys: ReadonlyMap<string, string> | undefined,
): Promise<Record<string, unknown>[]> {
  const anchor = await latestAnchor(client);
  if (!anchor) return [];
  const found: Record<string, unknown>[] = [];
  const publicKey = publicKeys?.get(anchor.keyId);
  if (publicKeys && !publicKey)
    found.push({
      anchor_id: anchor.id,
      differs: `signed with key ${anchor.keyId}, which is not trusted (ANCHOR_PUBLIC_KEYS, ANCHOR_SIGNING_KEY)`,
    });
  else if (
    publicKey &&
    !verifyAnchorSignature(publicKey, anchorMessage(anchor), Buffer.from(anchor.signature, 'base64'))
  )
    found.push({ anchor_id: anchor.id, differs: `the signature does not verify with key ${anchor.keyId}` });
  const leaves = await anchorLeaves(client, anchor.id);
  const root = merkleRoot(leaves.map(leafHash)).toString('hex');
  if (root !== anchor.rootHex)
    found.push({
      anchor_id: anchor.id,
      differs: `the stored leaves make root ${root}, the anchor signed ${anchor.rootHex}`,
    });
  const { rows } = await client.query<{ user_id: string; version: string; hash: string | null }>(
    `SELECT l.user_id::text, l.version::text, encode(e.hash, 'hex') AS hash
     FROM anchor_leaves l LEFT JOIN balance_events e ON e.user_id = l.user_id AND e.sequence = l.version AND e.part = 0
     WHERE l.anchor_id = $1 AND (e.hash IS NULL OR e.hash <> l.hash) ORDER BY l.leaf_index LIMIT $2`,
    [anchor.id, shownMax],
  );
  for (const r of rows)
    found.push({
      anchor_id: anchor.id,
      user_id: Number(r.user_id),
      version: r.version,
      differs:
        r.hash === null
          ? 'the anchored link is gone from the chain'
          : `the anchored link was ${leaves.find((l) => String(l.userId) === r.user_id)?.hashHex}, the chain now has ${r.hash}`,
    });
  return found;
}
