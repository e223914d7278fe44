/**
 * Anchors as stored (sql/0027_history_chain.sql): made from one snapshot of every user's chain
 * head, signed, kept with the latest anchor's leaves and tree levels for proofs, and marked
 * published once the anchors topic has them.
 */
import type pg from 'pg';
import { withClient } from '../../db/pool.ts';
import type { AnchorSigner } from '../anchor-signing.ts';
import {
  anchorMessage,
  type AnchorFields,
  type ChainHead,
  HASH_BYTES,
  leafHash,
  merkleLevels,
  merklePath,
  type PathStep,
} from '../chain.ts';

/** Any process making an anchor takes it, so two never interleave. */
export const ANCHOR_LOCK_KEY = 7_240_513_027;

export interface Anchor extends AnchorFields {
  /** The Ed25519 signature of `anchorMessage`, base64. */
  readonly signature: string;
}

const SQL_HEADS = `
  SELECT owner_id::text AS user_id, version::text, encode(chain_hash, 'hex') AS hash FROM accounts
  WHERE kind = 'user_available' AND stripe = 0 AND chain_hash IS NOT NULL ORDER BY owner_id`;
const SQL_ANCHOR_COLUMNS = `id::int AS id, key_id, encode(root, 'hex') AS root,
  users::int AS users, to_json(created_at)#>>'{}' AS created_at, encode(signature, 'base64') AS signature`;

interface AnchorRow {
  id: number;
  key_id: string;
  root: string;
  users: number;
  created_at: string;
  signature: string;
}

function anchorOf(row: AnchorRow): Anchor {
  return {
    id: row.id,
    keyId: row.key_id,
    rootHex: row.root,
    users: row.users,
    createdAt: new Date(row.created_at).toISOString(),
    signature: row.signature.replaceAll('\n', ''),
  };
}

/** The most leaves one INSERT carries: bounds the statement's parameters, whatever the user count. */
export const ANCHOR_LEAVES_PER_INSERT = 50_000;

export interface AnchorOptions {
  readonly now?: () => Date;
  /** Make the anchor only if none was made in the last this many seconds (checked under the lock). */
  readonly unlessMadeWithinS?: number;
}

/**
 * Anchors every chain as one snapshot shows it: reads the heads, builds the tree, signs its root,
 * and stores the anchor with its leaves and levels (dropping the previous anchor's), in one
 * transaction. Null when another process is making one (a transaction lock, so no connection
 * waits and nothing outlives the transaction), or when one was made within `unlessMadeWithinS`.
 * Not yet published: `publishAnchors` sends it.
 */
export function createAnchor(pool: pg.Pool, signer: AnchorSigner, options: AnchorOptions = {}): Promise<Anchor | null> {
  const now = options.now ?? (() => new Date());
  return withClient(pool, async (client) => {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    try {
      await client.query('SET LOCAL statement_timeout = 0');
      const locked = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [
        ANCHOR_LOCK_KEY,
      ]);
      if (!locked.rows[0]!.ok || (await madeWithin(client, now(), options.unlessMadeWithinS))) {
        await client.query('ROLLBACK');
        return null;
      }
      const heads = (await client.query<{ user_id: string; version: string; hash: string }>(SQL_HEADS)).rows.map(
        (r): ChainHead => ({ userId: Number(r.user_id), version: BigInt(r.version), hashHex: r.hash }),
      );
      const levels = merkleLevels(heads.map(leafHash));
      const { rows } = await client.query<{ id: string }>(
        "SELECT nextval(pg_get_serial_sequence('anchors', 'id')) AS id",
      );
      const fields: AnchorFields = {
        id: Number(rows[0]!.id),
        keyId: signer.keyId,
        rootHex: levels.at(-1)![0]!.toString('hex'),
        users: heads.length,
        createdAt: now().toISOString(),
      };
      const anchor: Anchor = { ...fields, signature: signer.sign(anchorMessage(fields)).toString('base64') };
      await insertAnchor(client, anchor, heads, levels);
      await client.query('COMMIT');
      return anchor;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  });
}

async function madeWithin(client: pg.PoolClient, now: Date, seconds: number | undefined): Promise<boolean> {
  if (seconds === undefined) return false;
  const since = new Date(now.getTime() - seconds * 1000);
  const { rows } = await client.query('SELECT 1 FROM anchors WHERE created_at > $1 LIMIT 1', [since]);
  return rows.length > 0;
}

async function insertAnchor(
  client: pg.PoolClient,
  anchor: Anchor,
  heads: readonly ChainHead[],
  levels: readonly Buffer[][],
): Promise<void> {
  await client.query(
    `INSERT INTO anchors (id, root, users, key_id, signature, created_at) OVERRIDING SYSTEM VALUE
     VALUES ($1, decode($2, 'hex'), $3, $4, decode($5, 'base64'), $6)`,
    [anchor.id, anchor.rootHex, anchor.users, anchor.keyId, anchor.signature, anchor.createdAt],
  );
  for (let from = 0; from < heads.length; from += ANCHOR_LEAVES_PER_INSERT) {
    const slice = heads.slice(from, from + ANCHOR_LEAVES_PER_INSERT);
    await client.query(
      `INSERT INTO anchor_leaves (anchor_id, leaf_index, user_id, version, hash)
       SELECT $1, $2 + k.i - 1, k.user_id, k.version, decode(k.hash, 'hex')
       FROM unnest($3::bigint[], $4::bigint[], $5::text[]) WITH ORDINALITY AS k(user_id, version, hash, i)`,
      [anchor.id, from, slice.map((h) => h.userId), slice.map((h) => String(h.version)), slice.map((h) => h.hashHex)],
    );
  }
  for (const [level, nodes] of levels.entries())
    await client.query('INSERT INTO anchor_levels (anchor_id, level, nodes) VALUES ($1, $2, $3)', [
      anchor.id,
      level,
      Buffer.concat(nodes),
    ]);
  await client.query('DELETE FROM anchor_leaves WHERE anchor_id < $1', [anchor.id]);
  await client.query('DELETE FROM anchor_levels WHERE anchor_id < $1', [anchor.id]);
}

export async function latestAnchor(db: pg.Pool | pg.PoolClient): Promise<Anchor | null> {
  const { rows } = await db.query<AnchorRow>(`SELECT ${SQL_ANCHOR_COLUMNS} FROM anchors ORDER BY id DESC LIMIT 1`);
  return rows[0] ? anchorOf(rows[0]) : null;
}

/** Anchors not yet on the anchors topic, oldest first. */
export async function unpublishedAnchors(pool: pg.Pool, limit: number): Promise<Anchor[]> {
  const { rows } = await pool.query<AnchorRow>(
    `SELECT ${SQL_ANCHOR_COLUMNS} FROM anchors WHERE published_at IS NULL ORDER BY id LIMIT $1`,
    [limit],
  );
  return rows.map(anchorOf);
}

export async function markAnchorsPublished(pool: pg.Pool, ids: readonly number[]): Promise<void> {
  await pool.query('UPDATE anchors SET published_at = now() WHERE id = ANY($1::bigint[]) AND published_at IS NULL', [
    ids,
  ]);
}

/** A user's head now, and where it stood in the latest anchor with the path to its root. */
export interface ChainProof {
  readonly userId: number;
  readonly head: { readonly version: string; readonly hash: string } | null;
  readonly anchor:
    | (Anchor & {
        readonly leaf: { readonly index: number; readonly version: string; readonly hash: string };
        readonly path: readonly PathStep[];
      })
    | null;
}

/** Read in one snapshot: a new anchor replacing the tree meanwhile cannot mix two anchors' parts. */
export function chainProof(pool: pg.Pool, userId: number): Promise<ChainProof> {
  return withClient(pool, async (client) => {
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    try {
      const proof = await chainProofIn(client, userId);
      await client.query('COMMIT');
      return proof;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  });
}

async function chainProofIn(pool: pg.PoolClient, userId: number): Promise<ChainProof> {
  const head = await pool.query<{ version: string; hash: string }>(
    `SELECT version::text, encode(chain_hash, 'hex') AS hash FROM accounts
     WHERE kind = 'user_available' AND owner_id = $1 AND stripe = 0 AND chain_hash IS NOT NULL`,
    [userId],
  );
  const anchor = await latestAnchor(pool);
  const leaf = anchor
    ? (
        await pool.query<{ leaf_index: string; version: string; hash: string }>(
          `SELECT leaf_index::text, version::text, encode(hash, 'hex') AS hash FROM anchor_leaves
           WHERE anchor_id = $1 AND user_id = $2`,
          [anchor.id, userId],
        )
      ).rows[0]
    : undefined;
  return {
    userId,
    head: head.rows[0] ?? null,
    anchor:
      anchor && leaf
        ? {
            ...anchor,
            leaf: { index: Number(leaf.leaf_index), version: leaf.version, hash: leaf.hash },
            path: await pathOf(pool, anchor.id, Number(leaf.leaf_index)),
          }
        : null,
  };
}

/** The siblings of leaf `index`, each read as a 32-byte slice of its level. */
async function pathOf(pool: pg.PoolClient, anchorId: number, index: number): Promise<PathStep[]> {
  const { rows: counted } = await pool.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM anchor_levels WHERE anchor_id = $1',
    [anchorId],
  );
  const levelCount = counted[0]!.n;
  const wanted = Array.from({ length: Math.max(0, levelCount - 1) }, (_, level) => ({
    level,
    position: Math.floor(index / 2 ** level) ^ 1,
  }));
  const { rows } = await pool.query<{ level: number; node: Buffer }>(
    `SELECT l.level, substring(l.nodes FROM (k.position * ${HASH_BYTES} + 1)::int FOR ${HASH_BYTES}) AS node
     FROM anchor_levels l JOIN unnest($2::int[], $3::bigint[]) AS k(level, position) ON k.level = l.level
     WHERE l.anchor_id = $1 AND octet_length(l.nodes) >= (k.position + 1) * ${HASH_BYTES}`,
    [anchorId, wanted.map((w) => w.level), wanted.map((w) => w.position)],
  );
  const byLevel = new Map(rows.map((r) => [r.level, r.node]));
  return merklePath(index, levelCount, (level) => byLevel.get(level) ?? null);
}

/** The latest anchor's leaves, for `npm run verify`. */
export async function anchorLeaves(db: pg.PoolClient, anchorId: number): Promise<ChainHead[]> {
  const { rows } = await db.query<{ user_id: string; version: string; hash: string }>(
    `SELECT user_id::text, version::text, encode(hash, 'hex') AS hash FROM anchor_leaves
     WHERE anchor_id = $1 ORDER BY leaf_index`,
    [anchorId],
  );
  return rows.map((r) => ({ userId: Number(r.user_id), version: BigInt(r.version), hashHex: r.hash }));
}

/** One link of a user's chain as stored: the payloads exactly as hashed, in part order. */
export interface ChainLinkRow {
  readonly version: string;
  readonly hash: string | null;
  readonly payloads: readonly string[];
}

/** A page of a user's links after `afterVersion`, in version order. */
export async function chainLinks(
  pool: pg.Pool,
  userId: number,
  afterVersion: bigint,
  limit: number,
): Promise<ChainLinkRow[]> {
  const { rows } = await pool.query<{ version: string; hash: string | null; payloads: string[] }>(
    `SELECT sequence::text AS version, encode((array_agg(hash ORDER BY part))[1], 'hex') AS hash, array_agg(payload ORDER BY part) AS payloads
     FROM balance_events WHERE user_id = $1 AND sequence > $2
     GROUP BY sequence ORDER BY sequence LIMIT $3`,
    [userId, String(afterVersion), limit],
  );
  return rows;
}
