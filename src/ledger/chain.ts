/**
 * The history chain and its anchors (docs/history-chain.md), as pure functions: the same code
 * links events in the consumer, recomputes them in `npm run verify`, and builds the Merkle trees
 * that anchors sign. `scripts/verify-export.mjs` re-implements these few lines on its own, so a
 * third party checks an export without this code; a test holds the two equal.
 *
 * Link:  hash_v = SHA-256(hash_(v-1) || UTF-8 of the version's event payloads joined by "\n"),
 *        with 32 zero bytes before a user's first event. The payload is the event's JSON exactly
 *        as published (events.ts fixes its key order and its number and time formats).
 * Leaf:  SHA-256(0x00 || UTF-8 of "<user_id>:<version>:<hash hex>")
 * Node:  SHA-256(0x01 || left || right); a level with an odd count carries its last node up.
 *        Leaves are ordered by user id. The tree of no leaves has 32 zero bytes as its root.
 * The 0x00 and 0x01 prefixes keep a leaf from ever being read as a node (RFC 6962's rule).
 */
import { createHash } from 'node:crypto';

export const HASH_BYTES = 32;
/** What comes before a user's first link, as hex. */
export const GENESIS_HASH_HEX = '00'.repeat(HASH_BYTES);

/** The link of one version: `previousHex` is the last link's hash, `payloads` the version's events in part order. */
export function linkHash(previousHex: string, payloads: readonly string[]): string {
  return createHash('sha256').update(Buffer.from(previousHex, 'hex')).update(payloads.join('\n'), 'utf8').digest('hex');
}

export interface ChainHead {
  readonly userId: number;
  readonly version: bigint;
  readonly hashHex: string;
}

export function leafHash(head: ChainHead): Buffer {
  return createHash('sha256')
    .update(Buffer.from([0]))
    .update(`${head.userId}:${head.version}:${head.hashHex}`, 'utf8')
    .digest();
}

function nodeHash(left: Buffer, right: Buffer): Buffer {
  return createHash('sha256')
    .update(Buffer.from([1]))
    .update(left)
    .update(right)
    .digest();
}

/** Every level of the tree over `leaves` (in order), leaves first, the root's level last. */
export function merkleLevels(leaves: readonly Buffer[]): Buffer[][] {
  if (leaves.length === 0) return [[Buffer.alloc(HASH_BYTES)]];
  const levels: Buffer[][] = [[...leaves]];
  while (levels.at(-1)!.length > 1) {
    const below = levels.at(-1)!;
    const above: Buffer[] = [];
    for (let i = 0; i < below.length; i += 2)
      above.push(i + 1 < below.length ? nodeHash(below[i]!, below[i + 1]!) : below[i]!);
    levels.push(above);
  }
  return levels;
}

export function merkleRoot(leaves: readonly Buffer[]): Buffer {
  return merkleLevels(leaves).at(-1)![0]!;
}

/** One step up from a leaf: the sibling's hash and which side it is on; none where the node is carried up. */
export interface PathStep {
  readonly side: 'left' | 'right';
  readonly hash: string;
}

/** The siblings from leaf `index` up to the root, read with `siblingAt(level, index)` (null where none). */
export function merklePath(
  index: number,
  levelCount: number,
  siblingAt: (level: number, index: number) => Buffer | null,
): PathStep[] {
  const path: PathStep[] = [];
  let at = index;
  for (let level = 0; level < levelCount - 1; level++) {
    const siblingIndex = at % 2 === 0 ? at + 1 : at - 1;
    const sibling = siblingAt(level, siblingIndex);
    if (sibling) path.push({ side: at % 2 === 0 ? 'right' : 'left', hash: sibling.toString('hex') });
    at = Math.floor(at / 2);
  }
  return path;
}

/** The root a leaf and its path lead to. */
export function rootOfPath(leaf: Buffer, path: readonly PathStep[]): Buffer {
  let node = leaf;
  for (const step of path) {
    const sibling = Buffer.from(step.hash, 'hex');
    node = step.side === 'right' ? nodeHash(node, sibling) : nodeHash(sibling, node);
  }
  return node;
}

export interface AnchorFields {
  readonly id: number;
  readonly keyId: string;
  readonly rootHex: string;
  readonly users: number;
  /** ISO 8601 UTC with milliseconds. */
  readonly createdAt: string;
}

/** The bytes an anchor's signature covers: "balance-anchor:v1:<id>:<key id>:<root hex>:<users>:<created_at>". */
export function anchorMessage(anchor: AnchorFields): Buffer {
  const { id, keyId, rootHex, users, createdAt } = anchor;
  return Buffer.from(`balance-anchor:v1:${id}:${keyId}:${rootHex}:${users}:${createdAt}`, 'utf8');
}

/** One link as stored: the version, its payloads in part order, and the hash written with it. */
export interface StoredLink {
  readonly version: bigint;
  readonly payloads: readonly string[];
  readonly hashHex: string | null;
}

/** The first link of a user's chain that does not hold, and what differs; null when all hold. */
export interface BrokenLink {
  readonly userId: number;
  readonly version: bigint;
  readonly differs: string;
}

/**
 * Walks one user's links (in version order) from `previousHex`; returns the first broken one, or
 * the hash the chain ends at. A missing version (a deleted event) breaks the chain at the gap.
 */
export function walkChain(
  userId: number,
  links: readonly StoredLink[],
  previous: { readonly version: bigint | null; readonly hashHex: string },
): { broken: BrokenLink } | { head: { version: bigint | null; hashHex: string } } {
  let { version, hashHex } = previous;
  for (const link of links) {
    if (version !== null && link.version !== version + 1n)
      return {
        broken: {
          userId,
          version: version + 1n,
          differs: `version ${version + 1n} is missing (next is ${link.version})`,
        },
      };
    const expected = linkHash(hashHex, link.payloads);
    if (link.hashHex !== expected)
      return {
        broken: {
          userId,
          version: link.version,
          differs: `stored hash ${link.hashHex ?? 'none'}, the events hash to ${expected}`,
        },
      };
    version = link.version;
    hashHex = expected;
  }
  return { head: { version, hashHex } };
}
