/**
 * The history chain over HTTP (docs/history-chain.md): a user's proof (their head, and where it
 * stands in the latest anchor, with the Merkle path to its root), and the export of their links
 * that `scripts/verify-export.mjs` checks without any of this service's code.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.ts';
import { chainLinks, chainProof } from '../../ledger/store/anchors.ts';
import { isKnownUser } from '../read-model.ts';
import { principalOf, type RouteDoc, type ZodTypeProvider } from '../route.ts';
import type { ApiContext } from '../context.ts';
import { CHAIN_LINKS_PER_PAGE_MAX } from '../schemas.ts';

const DEFAULT_CHAIN_LINKS = 100;

const PROOF_DOC: RouteDoc = {
  summary: "A user's history-chain head and its proof in the latest anchor",
  tag: 'reads',
  auth: true,
  responses: {
    '200':
      '{user_id, head: {version, hash} | null, anchor: {anchor_id, key_id, root, users, created_at, signature, leaf: {index, version, hash}, path: [{side, hash}]} | null}; anchor is null until an anchor includes the user',
    '403': "Another user's account.",
    '404': 'Unknown user.',
  },
};
const CHAIN_DOC: RouteDoc = {
  summary: "A page of a user's history chain, each link with its hash and the event payloads it hashes",
  tag: 'reads',
  auth: true,
  responses: {
    '200': `{user_id, links: [{version, hash, payloads: [string]}], next_after_version | null}; at most ${CHAIN_LINKS_PER_PAGE_MAX} links a page`,
    '403': "Only service and admin: the payloads show every caller's command ids as they are.",
    '404': 'Unknown user.',
  },
};

export function registerChainRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    '/api/balances/proof/',
    { schema: { querystring: ctx.schemas.proofQuery }, config: { doc: PROOF_DOC } },
    async (request) => {
      const { user_id: userId } = request.query;
      ctx.permissions.require(principalOf(request), 'read_account', { userId });
      if (!(await isKnownUser(ctx.pool, userId))) throw new ApiError('not_found', `No user ${userId}.`);
      const proof = await chainProof(ctx.pool, userId);
      const { anchor } = proof;
      return {
        user_id: userId,
        head: proof.head,
        anchor: anchor && {
          anchor_id: anchor.id,
          key_id: anchor.keyId,
          root: anchor.rootHex,
          users: anchor.users,
          created_at: anchor.createdAt,
          signature: anchor.signature,
          leaf: anchor.leaf,
          path: anchor.path,
        },
      };
    },
  );

  typed.get(
    '/api/balances/chain/',
    { schema: { querystring: ctx.schemas.chainQuery }, config: { doc: CHAIN_DOC } },
    async (request) => {
      const principal = principalOf(request);
      const { user_id: userId, after_version: afterVersion, limit = DEFAULT_CHAIN_LINKS } = request.query;
      ctx.permissions.require(principal, 'read_account', { userId });
      // A user's history shows merchants' command ids masked (reads.ts); the payloads cannot be.
      if (principal.role === 'user') throw new ApiError('forbidden', 'Only services and admins may export a chain.');
      if (!(await isKnownUser(ctx.pool, userId))) throw new ApiError('not_found', `No user ${userId}.`);
      const links = await chainLinks(ctx.pool, userId, BigInt(afterVersion), limit);
      return {
        user_id: userId,
        links,
        next_after_version: links.length === limit ? links.at(-1)!.version : null,
      };
    },
  );
}
