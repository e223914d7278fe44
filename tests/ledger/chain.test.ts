import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  GENESIS_HASH_HEX,
  leafHash,
  linkHash,
  merkleLevels,
  merklePath,
  merkleRoot,
  rootOfPath,
  walkChain,
} from '../../src/ledger/chain.ts';

const heads = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    userId: i + 1,
    version: BigInt(i + 3),
    hashHex: linkHash(GENESIS_HASH_HEX, [`e${i}`]),
  }));

describe('the history chain', () => {
  it('links SHA-256(previous || payloads joined by a newline), from 32 zero bytes', () => {
    const first = linkHash(GENESIS_HASH_HEX, ['{"a":1}', '{"b":2}']);
    const expected = createHash('sha256').update(Buffer.alloc(32)).update('{"a":1}\n{"b":2}').digest('hex');
    expect(first).toBe(expected);
    expect(linkHash(first, ['{"a":1}'])).not.toBe(linkHash(GENESIS_HASH_HEX, ['{"a":1}']));
  });

  it('walks a chain to its head, and names the first link that does not hold', () => {
    const h1 = linkHash(GENESIS_HASH_HEX, ['one']);
    const h2 = linkHash(h1, ['two']);
    const h3 = linkHash(h2, ['three']);
    const links = [
      { version: 1n, payloads: ['one'], hashHex: h1 },
      { version: 2n, payloads: ['two'], hashHex: h2 },
      { version: 3n, payloads: ['three'], hashHex: h3 },
    ];
    const start = { version: null, hashHex: GENESIS_HASH_HEX };
    expect(walkChain(7, links, start)).toEqual({ head: { version: 3n, hashHex: h3 } });
    const edited = links.map((l) => (l.version === 2n ? { ...l, payloads: ['TWO'] } : l));
    expect(walkChain(7, edited, start)).toEqual({
      broken: { userId: 7, version: 2n, differs: expect.stringContaining(`stored hash ${h2}`) },
    });
    expect(walkChain(7, [links[0]!, links[2]!], start)).toEqual({
      broken: { userId: 7, version: 2n, differs: 'version 2 is missing (next is 3)' },
    });
    expect(walkChain(7, [links[1]!, links[0]!, links[2]!], start)).toHaveProperty('broken.version', 2n);
  });

  it.each([1, 2, 3, 5, 8, 13, 100])('proves every one of %i leaves against the root', (n) => {
    const leaves = heads(n).map(leafHash);
    const levels = merkleLevels(leaves);
    const root = merkleRoot(leaves);
    for (let i = 0; i < n; i++) {
      const path = merklePath(i, levels.length, (level, index) => levels[level]![index] ?? null);
      expect(rootOfPath(leaves[i]!, path).equals(root)).toBe(true);
      // Another leaf on the same path leads elsewhere.
      const other = leafHash({ userId: i + 1, version: 1n, hashHex: GENESIS_HASH_HEX });
      expect(rootOfPath(other, path).equals(root)).toBe(false);
    }
  });

  it('commits to every head: a different version, hash or user changes the root', () => {
    const base = heads(5);
    const root = merkleRoot(base.map(leafHash)).toString('hex');
    const changed = [
      base.map((h, i) => (i === 2 ? { ...h, version: h.version + 1n } : h)),
      base.map((h, i) => (i === 4 ? { ...h, hashHex: GENESIS_HASH_HEX } : h)),
      base.map((h, i) => (i === 0 ? { ...h, userId: 99 } : h)),
      base.slice(0, 4),
    ];
    for (const c of changed) expect(merkleRoot(c.map(leafHash)).toString('hex')).not.toBe(root);
    expect(merkleRoot([]).toString('hex')).toBe(GENESIS_HASH_HEX);
  });
});
