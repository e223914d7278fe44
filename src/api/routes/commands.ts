/**
 * The money-moving endpoints of the original API. Each validates its body, checks who may act
 * on the account, turns the body into a command keyed by the Idempotency-Key, and then:
 *   - answers at once from the database if that key was already decided;
 *   - with `Prefer: respond-async`, answers 202 as soon as Kafka acknowledged the command;
 *   - otherwise waits up to REPLY_WAIT_MS for the reply: 201 applied, 409 rejected, or 202 with
 *     a Location to poll.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { commandFingerprint, type Command } from '../../commands/schema.ts';
import { ApiError } from '../../errors.ts';
import { loadOutcome } from '../../ledger/queries.ts';
import type { CommandReply, TransactionView } from '../../ledger/outcome.ts';
import { authenticate, parseOr400, requireAccount } from '../http.ts';
import type { Principal } from '../auth/tokens.ts';
import type { ApiContext } from '../context.ts';

type CommandBody = Omit<Command, 'id' | 'reply_to'>;

interface CommandRoute {
  readonly path: string;
  readonly schema: keyof ApiContext['schemas'];
  /** The body as a command, without its id. */
  readonly toCommand: (body: never) => CommandBody;
  /** The account the caller must be allowed to act on. */
  readonly owner: (body: never) => number;
}

const ROUTES: readonly CommandRoute[] = [
  route('/api/add_funds', 'addFunds', (b: { user_id: number; amount: bigint; comment?: string }) => ({ type: 'deposit', ...b })),
  route('/api/withdraw_funds', 'withdrawFunds', (b: { user_id: number; amount: bigint; comment?: string }) => ({ type: 'withdraw', ...b })),
  route('/api/reserve_funds', 'reserveFunds', (b: OrderBody & { amount: bigint }) => ({ type: 'reserve', ...b })),
  route('/api/deduct_funds', 'deductFunds', (b: OrderBody & { amount: bigint }) => ({ type: 'capture', ...b })),
  route('/api/cancel_reservation', 'cancelReservation', (b: OrderBody) => ({ type: 'release', ...b })),
  {
    path: '/api/transfer_funds',
    schema: 'transferFunds',
    toCommand: ((b: { sender_id: number; recipient_id: number; amount: bigint; comment?: string }) => ({
      type: 'transfer',
      user_id: b.sender_id,
      recipient_id: b.recipient_id,
      amount: b.amount,
      ...(b.comment === undefined ? {} : { comment: b.comment }),
    })) as never,
    owner: ((b: { sender_id: number }) => b.sender_id) as never,
  },
];

interface OrderBody {
  user_id: number;
  service_id: number;
  order_id: number;
  comment?: string;
}

function route<B extends { user_id: number }>(path: string, schema: CommandRoute['schema'], toCommand: (body: B) => CommandBody): CommandRoute {
  return { path, schema, toCommand: toCommand as never, owner: ((b: B) => b.user_id) as never };
}

export function registerCommandRoutes(app: FastifyInstance, ctx: ApiContext): void {
  for (const spec of ROUTES) {
    app.post(spec.path, (request, reply) => handleCommand(spec, request, reply, ctx));
  }
}

async function handleCommand(spec: CommandRoute, request: FastifyRequest, reply: FastifyReply, ctx: ApiContext) {
  const principal = await authenticate(request, ctx.tokens);
  const body = parseOr400(ctx.schemas[spec.schema], request.body) as never;
  requireAccount(principal, spec.owner(body));
  const clientKey = idempotencyKey(request, ctx);
  const command = { id: clientKey ?? randomUUID(), ...spec.toCommand(body) } as Command;
  // Only a key the client chose can have been used before; a fresh UUID needs no look-up.
  const stored = clientKey ? await loadOutcome(ctx.pool, command.id) : null;
  if (stored) {
    // A reused key says nothing about the command it belongs to, which may be someone else's.
    if (stored.fingerprint !== commandFingerprint(command)) throw keyReused(command.id);
    return answer(reply, visibleTo(principal, stored.reply));
  }
  const client = ctx.client;
  if (!client) throw new ApiError('service_unavailable', 'Commands cannot be published: Kafka is not connected.');
  ctx.pending.add(command.id, command.user_id);
  if (prefersAsync(request)) {
    await publishOr503(() => client.publish(command));
    return accepted(reply, command.id);
  }
  const replied = await publishOr503(() => client.request(command, { timeoutMs: ctx.config.limits.replyWaitMs }));
  // A reply can be missed (this gateway restarted, a rebalance); the database has the truth.
  const outcome = replied ?? (await loadOutcome(ctx.pool, command.id))?.reply ?? null;
  return outcome ? answer(reply, visibleTo(principal, outcome), replied !== null) : accepted(reply, command.id);
}

function idempotencyKey(request: FastifyRequest, ctx: ApiContext): string | null {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return null;
  return parseOr400(ctx.schemas.idempotencyKey, Array.isArray(header) ? header[0] : header);
}

function prefersAsync(request: FastifyRequest): boolean {
  const prefer = request.headers.prefer;
  return typeof prefer === 'string' && /(^|[,;\s])respond-async($|[,;\s])/i.test(prefer);
}

async function publishOr503<T>(publish: () => Promise<T>): Promise<T> {
  try {
    return await publish();
  } catch (error) {
    if (error instanceof ApiError) throw error;
    // The command was not acknowledged: the caller knows it may not exist, and a retry with
    // the same Idempotency-Key is safe whether or not it does.
    throw new ApiError('service_unavailable', `The command was not accepted by Kafka (${(error as Error).name}); retry with the same Idempotency-Key.`);
  }
}

function accepted(reply: FastifyReply, commandId: string) {
  return reply
    .code(202)
    .header('location', `/api/commands/${encodeURIComponent(commandId)}`)
    .send({ command_id: commandId, status: 'pending' });
}

/** 201 for a command applied by this request, 200 for an idempotent repeat, 409 for a rejection. */
function answer(reply: FastifyReply, outcome: CommandReply, firstTime = !outcome.duplicate) {
  if (outcome.status === 'rejected') throw conflict(outcome);
  return reply.code(firstTime && !outcome.duplicate ? 201 : 200).send(transactionBody(outcome));
}

function keyReused(commandId: string): ApiError {
  return new ApiError('conflict', 'This Idempotency-Key was already used for a different request.', { code: 'idempotency_key_reused', command_id: commandId }, 'idempotency_key_reused');
}

/**
 * A `user` sees only their own balance in an answer: a transfer touches the recipient too,
 * and the recipient's balance is none of the sender's business. Services and admins see all.
 */
export function visibleTo(principal: Principal, outcome: CommandReply): CommandReply {
  if (principal.role !== 'user') return outcome;
  const own = outcome.balances[String(principal.userId)];
  return { ...outcome, balances: own ? { [String(principal.userId)]: own } : {} };
}

function conflict(outcome: CommandReply): ApiError {
  return new ApiError('conflict', outcome.message, { code: outcome.code, command_id: outcome.command_id, balances: outcome.balances }, outcome.code);
}

/** The seed API's transaction JSON (`user` is the user id), plus the ledger's fields. */
export function transactionBody(outcome: CommandReply) {
  const seed = (t: TransactionView) => ({ ...t, user: t.user_id });
  const common = { command_id: outcome.command_id, status: outcome.status, duplicate: outcome.duplicate, balances: outcome.balances };
  const [first, second] = outcome.transactions;
  if (first?.transaction_type === 'transfer_out' && second) {
    return { sender_transaction: seed(first), recipient_transaction: seed(second), ...common };
  }
  return { ...(first ? seed(first) : {}), transactions: outcome.transactions.map(seed), ...common };
}
