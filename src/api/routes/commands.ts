/**
 * The money-moving endpoints of the original API. Each validates its body, checks the permission
 * table (permissions.ts), turns the body into a command whose id is the caller's
 * Idempotency-Key scoped to the caller (`~http:<user id>:<key>`, so two callers' keys never
 * meet), and then:
 *   - with `Prefer: respond-async`, answers at once from the database if that key was already
 *     decided, else 202 as soon as Kafka acknowledged the command;
 *   - otherwise publishes it and waits up to REPLY_WAIT_MS for the reply: 201 applied, 200 a
 *     repeat (the consumer answers it from what it stored), 409 rejected, or 202 with a
 *     Location to poll.
 * Callers see their own key as `command_id`, never the scoped id.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { COMMAND_CATALOG } from '../../commands/catalog.ts';
import { CLIENT_COMMAND_TYPES, type ClientCommandType } from '../../commands/command-types.ts';
import {
  commandFingerprint,
  httpKeySchema,
  httpScopedId,
  parseHttpScopedId,
  type Command,
} from '../../commands/schema.ts';
import { z } from 'zod';
import { ApiError } from '../../errors.ts';
import { loadOutcome, type StoredOutcome } from '../read-model.ts';
import type { CommandReply, TransactionView } from '../../ledger/outcome.ts';
import { parseOr400 } from '../http.ts';
import type { Principal } from '../../commands/permissions.ts';
import type { ApiContext } from '../context.ts';
import { principalOf, type HeaderDoc, type ZodTypeProvider } from '../route.ts';
import {
  prefersAsync,
  publisherOf,
  requireKnownRecipients,
  requirePermission,
  submitCommands,
  takeRateToken,
} from '../submit.ts';

/** What every money-moving endpoint answers. */
export const COMMAND_RESPONSES = {
  '201': 'Applied: the transaction JSON.',
  '200': 'A repeat of an Idempotency-Key already applied: the same transaction JSON.',
  '202': 'Accepted, not decided yet: poll the Location.',
  '400': 'Invalid input; `details` names the fields.',
  '401': 'Missing or invalid access token.',
  '403': 'Not allowed for this account.',
  '409': 'Rejected by the ledger; `code` says why.',
  '413': 'Body too large.',
  '415': 'Not application/json.',
  '429': 'Over the rate limit of this account (`rate_limited`); retry after `Retry-After` seconds.',
  '503':
    "Kafka unreachable, or the consumers do not accept this gateway's key; nothing was done, retry with the same Idempotency-Key.",
};

/** The headers a command endpoint reads, checked with these schemas and documented from them. */
export const COMMAND_HEADERS: readonly HeaderDoc[] = [
  {
    name: 'Idempotency-Key',
    schema: httpKeySchema,
    description:
      'Makes retries safe: the same key and body give the same answer (required unless ALLOW_MISSING_IDEMPOTENCY_KEY).',
  },
  {
    name: 'Prefer',
    schema: z.enum(['respond-async']),
    description: 'respond-async: answer 202 as soon as Kafka accepted the command.',
  },
];

/** One POST route per client command type of the catalog, at its path, with its body schema. */
export function registerCommandRoutes(app: FastifyInstance, ctx: ApiContext): void {
  for (const type of CLIENT_COMMAND_TYPES) {
    const endpoint = COMMAND_CATALOG[type].http;
    app.withTypeProvider<ZodTypeProvider>().post(
      endpoint.path,
      {
        schema: { body: ctx.schemas.commandBodies[type] },
        config: {
          doc: {
            summary: endpoint.summary,
            tag: 'commands',
            auth: true,
            responses: COMMAND_RESPONSES,
            headers: COMMAND_HEADERS,
          },
        },
      },
      (request, reply) => handleCommand(type, request, reply, ctx),
    );
  }
}

async function handleCommand(type: ClientCommandType, request: FastifyRequest, reply: FastifyReply, ctx: ApiContext) {
  const principal = principalOf(request);
  const body = COMMAND_CATALOG[type].http.toCommand(request.body, principal);
  requirePermission(ctx, principal, body as Omit<Command, 'id'>);
  takeRateToken(ctx, principal, reply);
  const clientKey = idempotencyKey(request, ctx);
  const key = clientKey ?? randomUUID();
  const command = { id: httpScopedId(principal.userId, key), ...body } as Command;
  const isAsync = prefersAsync(request);
  // Only a key the client chose can have been used before; a fresh UUID needs no look-up. A
  // synchronous request needs none either: the consumer answers a repeat from its stored
  // outcome (`duplicate: true`, or idempotency_key_reused), so a keyed request costs no read
  // here. An asynchronous one answers at once, so it looks first, as does any request while
  // Kafka is away.
  const stored = clientKey && (isAsync || !ctx.client) ? await loadOutcome(ctx.pool, command.id) : null;
  if (stored && stored.fingerprint !== commandFingerprint(command)) throw keyReused(key);
  // A transfer whose credit is still in flight is sent again: the consumer answers the repeat
  // only after it has (re)published the settle, so the caller's next command lands behind it.
  if (stored && !stored.creditInFlight) return answer(reply, forCaller(principal, stored.reply));
  if (!stored) await requireKnownRecipients(ctx, command);
  const client = publisherOf(ctx, { command_id: key });
  const [replied] = await submitCommands(ctx, {
    client,
    principal,
    commands: [command],
    async: isAsync,
    unacknowledged: (name) =>
      new ApiError(
        'service_unavailable',
        `Kafka did not acknowledge the command (${name}); it may or may not have been accepted. Poll /api/commands/${key} or retry with the same Idempotency-Key.`,
        { command_id: key },
      ),
  });
  if (isAsync) return accepted(reply, key);
  // A reply can be missed (this gateway restarted, a rebalance); the database has the truth.
  const outcome = replied ?? finalOutcome(await loadOutcome(ctx.pool, command.id));
  return outcome ? answer(reply, forCaller(principal, outcome), replied !== null) : accepted(reply, key);
}

/** A stored outcome a caller may act on: not a transfer whose credit is still in flight. */
function finalOutcome(stored: StoredOutcome | null): CommandReply | null {
  return stored && !stored.creditInFlight ? stored.reply : null;
}

/** The caller's Idempotency-Key; required unless ALLOW_MISSING_IDEMPOTENCY_KEY. */
function idempotencyKey(request: FastifyRequest, ctx: ApiContext): string | null {
  const header = request.headers['idempotency-key'];
  if (header === undefined) {
    if (ctx.config.auth.allowMissingIdempotencyKey) return null;
    throw new ApiError('idempotency_key_required');
  }
  return parseOr400(httpKeySchema, Array.isArray(header) ? header[0] : header);
}

function accepted(reply: FastifyReply, key: string) {
  return reply
    .code(202)
    .header('location', `/api/commands/${encodeURIComponent(key)}`)
    .send({ command_id: key, status: 'pending' });
}

/** 201 for a command applied by this request, 200 for an idempotent repeat, 409 for a rejection. */
function answer(reply: FastifyReply, outcome: CommandReply, firstTime = !outcome.duplicate) {
  if (outcome.status === 'rejected') throw conflict(outcome);
  return reply.code(firstTime && !outcome.duplicate ? 201 : 200).send(transactionBody(outcome));
}

function keyReused(key: string): ApiError {
  return new ApiError(
    'conflict',
    'This Idempotency-Key was already used for a different request.',
    { code: 'idempotency_key_reused', command_id: key },
    'idempotency_key_reused',
  );
}

/**
 * A command's outcome as `principal` may see it: its own key instead of the scoped id, and for
 * a `user`, only its own balance (a transfer touches the recipient, whose balance is none of
 * the sender's business). Services and admins see every balance.
 */
export function forCaller(principal: Principal, outcome: CommandReply): CommandReply {
  const key = (id: string) => {
    const scoped = parseHttpScopedId(id);
    return scoped && scoped.userId === principal.userId ? scoped.key : id;
  };
  const own = outcome.balances[String(principal.userId)];
  const balances = principal.role === 'user' ? (own ? { [String(principal.userId)]: own } : {}) : outcome.balances;
  return {
    ...outcome,
    command_id: key(outcome.command_id),
    transactions: outcome.transactions.map((t) => ({ ...t, command_id: key(t.command_id) })),
    balances,
  };
}

function conflict(outcome: CommandReply): ApiError {
  return new ApiError(
    'conflict',
    outcome.message,
    { code: outcome.code, command_id: outcome.command_id, balances: outcome.balances },
    outcome.code,
  );
}

/** The seed API's transaction JSON (`user` is the user id), plus the ledger's fields. */
export function transactionBody(outcome: CommandReply) {
  const seed = (t: TransactionView) => ({ ...t, user: t.user_id });
  const common = {
    command_id: outcome.command_id,
    status: outcome.status,
    duplicate: outcome.duplicate,
    balances: outcome.balances,
  };
  const [first, second] = outcome.transactions;
  if (first?.transaction_type === 'transfer_out' && second) {
    // A transfer's rows come in pairs, one per leg: the sender's, then the recipient's.
    const legs = [];
    for (let i = 0; i + 1 < outcome.transactions.length; i += 2) {
      const [out, into] = [outcome.transactions[i]!, outcome.transactions[i + 1]!];
      legs.push({
        recipient_id: into.user_id,
        amount: into.amount,
        sender_transaction: seed(out),
        recipient_transaction: seed(into),
      });
    }
    return { sender_transaction: seed(first), recipient_transaction: seed(second), legs, ...common };
  }
  return { ...(first ? seed(first) : {}), transactions: outcome.transactions.map(seed), ...common };
}
