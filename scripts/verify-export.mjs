#!/usr/bin/env node
// Checks an export of a user's history chain against a signed anchor, with nothing but Node.js:
// none of the service's code, so a third party can run it without trusting the operator.
// docs/history-chain.md describes the formats; this file is the whole checker.
//
//   node scripts/verify-export.mjs --chain chain.json [--proof proof.json --public-key <base64>]
//
// chain.json: the JSON of GET /api/balances/chain/?user_id=N (one page, or an array of pages
// in order), from the user's first link. proof.json: GET /api/balances/proof/?user_id=N, kept
// when it was fetched. --public-key: the anchor key's raw 32-byte Ed25519 public key, base64,
// as the operator published it. Exit 0: every link and the proof hold; 1: the first that does not.
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const sha256 = (...parts) => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
};

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Error(`unexpected argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  if (!out.chain)
    throw new Error('usage: verify-export.mjs --chain chain.json [--proof proof.json --public-key <base64>]');
  return out;
}

// Link: SHA-256(previous hash || the version's payloads joined by "\n"), 32 zero bytes first.
function walk(pages) {
  let previous = Buffer.alloc(32);
  let version = null;
  const hashes = new Map();
  let userId = null;
  for (const page of pages) {
    userId ??= page.user_id;
    if (page.user_id !== userId) throw new Error(`the pages are of users ${userId} and ${page.user_id}`);
    for (const link of page.links) {
      if (version !== null && BigInt(link.version) !== version + 1n)
        throw new Error(`version ${version + 1n} is missing (next is ${link.version})`);
      const hash = sha256(previous, Buffer.from(link.payloads.join('\n'), 'utf8'));
      if (hash.toString('hex') !== link.hash)
        throw new Error(`link ${link.version}: stored hash ${link.hash}, the payloads hash to ${hash.toString('hex')}`);
      previous = hash;
      version = BigInt(link.version);
      hashes.set(link.version, link.hash);
    }
  }
  return { userId, version, head: previous.toString('hex'), hashes };
}

// Leaf: SHA-256(0x00 || "<user>:<version>:<hash>"); node: SHA-256(0x01 || left || right).
function checkProof(chain, proof, publicKeyBase64) {
  const { anchor } = proof;
  if (!anchor) throw new Error('the proof has no anchor yet');
  if (proof.user_id !== chain.userId)
    throw new Error(`the proof is of user ${proof.user_id}, the chain of ${chain.userId}`);
  const raw = Buffer.from(publicKeyBase64, 'base64');
  const keyId = `ed25519:${sha256(raw).toString('hex').slice(0, 16)}`;
  if (keyId !== anchor.key_id)
    throw new Error(`the anchor names key ${anchor.key_id}, the public key given is ${keyId}`);
  const message = `balance-anchor:v1:${anchor.anchor_id}:${anchor.key_id}:${anchor.root}:${anchor.users}:${anchor.created_at}`;
  const key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
  if (!verify(null, Buffer.from(message, 'utf8'), key, Buffer.from(anchor.signature, 'base64')))
    throw new Error(`anchor ${anchor.anchor_id}: the signature does not verify`);
  const chained = chain.hashes.get(anchor.leaf.version);
  if (chained !== anchor.leaf.hash)
    throw new Error(
      `anchor ${anchor.anchor_id} holds link ${anchor.leaf.version} as ${anchor.leaf.hash}; the export has ${chained ?? 'no such link'}`,
    );
  let node = sha256(
    Buffer.from([0]),
    Buffer.from(`${proof.user_id}:${anchor.leaf.version}:${anchor.leaf.hash}`, 'utf8'),
  );
  for (const step of anchor.path) {
    const sibling = Buffer.from(step.hash, 'hex');
    node = step.side === 'right' ? sha256(Buffer.from([1]), node, sibling) : sha256(Buffer.from([1]), sibling, node);
  }
  if (node.toString('hex') !== anchor.root)
    throw new Error(
      `anchor ${anchor.anchor_id}: the path leads to ${node.toString('hex')}, the anchor signed ${anchor.root}`,
    );
  return anchor;
}

try {
  const options = args(process.argv.slice(2));
  const parsed = JSON.parse(readFileSync(options.chain, 'utf8'));
  const chain = walk(Array.isArray(parsed) ? parsed : [parsed]);
  console.log(
    `ok   chain of user ${chain.userId}: ${chain.hashes.size} link(s), head version ${chain.version}, hash ${chain.head}`,
  );
  if (options.proof) {
    if (!options['public-key']) throw new Error('--proof needs --public-key');
    const anchor = checkProof(chain, JSON.parse(readFileSync(options.proof, 'utf8')), options['public-key']);
    console.log(
      `ok   anchor ${anchor.anchor_id} (${anchor.created_at}, ${anchor.users} user(s)) signed by ${anchor.key_id} holds link ${anchor.leaf.version}`,
    );
  }
} catch (error) {
  console.log(`FAIL ${error.message}`);
  process.exitCode = 1;
}
