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
import { commandFingerprint, httpScopedId, parseHttpScopedId, type Command } from '../../commands/schema.ts';
import { ApiError } from '../../errors.ts';
import { legsOf } from '../../ledger/core.ts';
import { isKnownUser, loadOutcome, type StoredOutcome } from '../read-model.ts';
import type { CommandReply, TransactionView } from '../../ledger/outcome.ts';
import { authenticate, parseOr400 } from '../http.ts';
import type { ClientCommand, Principal } from '../permissions.ts';
import type { ApiContext } from '../context.ts';
import type { CommandClient } from '../../client/command-client.ts';

type CommandBody = Omit<Command, 'id' | 'reply_to'>;

/** One money-moving endpoint: the route, its permission, its body schema and its OpenAPI summary. */
export interface CommandRoute {
  readonly path: string;
  /** What the OpenAPI document says it does. */
  readonly summary: string;
  readonly type: ClientCommand;
  readonly schema: keyof ApiContext['schemas'];
  /** The body as a command, without its id; `caller` is who sent it. */
  readonly toCommand: (body: never, caller: Principal) => CommandBody;
}

export const COMMAND_ROUTES: readonly CommandRoute[] = [
  route(
    '/api/add_funds',
    'Deposit',
    'deposit',
    'addFunds',
    (b: { user_id: number; amount: bigint; comment?: string }) => ({
      type: 'deposit',
      ...b,
    }),
  ),
  route(
    '/api/withdraw_funds',
    'Withdraw',
    'withdraw',
    'withdrawFunds',
    (b: { user_id: number; amount: bigint; comment?: string }) => ({ type: 'withdraw', ...b }),
  ),
  route(
    '/api/reserve_funds',
    'Reserve funds for an order (optionally expiring: expires_in_s)',
    'reserve',
    'reserveFunds',
    (b: OrderBody & { amount: bigint }) => ({
      type: 'reserve',
      ...b,
    }),
  ),
  route(
    '/api/deduct_funds',
    'Revenue recognition: capture a reservation',
    'capture',
    'deductFunds',
    (b: OrderBody & { amount: bigint }) => ({
      type: 'capture',
      ...b,
    }),
  ),
  route('/api/cancel_reservation', 'Cancel a reservation', 'release', 'cancelReservation', (b: OrderBody) => ({
    type: 'release',
    ...b,
  })),
  route(
    '/api/refund_funds',
    'Refund part or all of a captured order, from the service revenue back to the user',
    'refund',
    'refundFunds',
    (b: OrderBody & { amount: bigint }) => ({ type: 'refund', ...b }),
  ),
  route(
    '/api/accounts/freeze',
    'Freeze an account: money can arrive but not leave (admins)',
    'freeze',
    'freezeAccount',
    (b: { user_id: number; reason: string }) => ({ type: 'freeze', ...b }),
  ),
  route(
    '/api/accounts/unfreeze',
    'Unfreeze an account (admins)',
    'unfreeze',
    'unfreezeAccount',
    (b: { user_id: number; reason?: string }) => ({ type: 'unfreeze', ...b }),
  ),
  route(
    '/api/transfer_funds',
    'Transfer between users: to one recipient, or split over several (recipients) in one decision',
    'transfer',
    'transferFunds',
    (b: {
      sender_id: number;
      recipient_id?: number;
      amount?: bigint;
      recipients?: Array<{ recipient_id: number; amount: bigint; comment?: string }>;
      comment?: string;
    }) => ({
      type: 'transfer',
      user_id: b.sender_id,
      ...(b.recipients === undefined
        ? { recipient_id: b.recipient_id!, amount: b.amount! }
        : { recipients: b.recipients }),
      ...(b.comment === undefined ? {} : { comment: b.comment }),
    }),
  ),
  route(
    '/api/balance_alerts',
    'Register a threshold alert on the available balance (below or above); its id is the command id',
    'set_alert',
    'setBalanceAlert',
    (b: { user_id: number; below?: bigint; above?: bigint }) => ({
      type: 'set_alert',
      user_id: b.user_id,
      ...(b.below === undefined
        ? { direction: 'above', threshold: b.above! }
        : { direction: 'below', threshold: b.below }),
    }),
  ),
  route(
    '/api/balance_alerts/remove',
    'Remove a threshold alert',
    'remove_alert',
    'removeBalanceAlert',
    (b: { user_id: number; alert_id: string }, caller) => ({
      type: 'remove_alert',
      user_id: b.user_id,
      alert_id: alertIdOf(b.alert_id, caller),
    }),
  ),
];

/**
 * An alert's id as the caller names it: their own Idempotency-Key stands for the id the gateway
 * gave their command. Services and admins may also name another caller's alert by its full id
 * (`~http:...`, as they see it listed); a user only their own, so they can neither remove a
 * merchant's alert nor learn, from 201 against 409, whether a guessed key exists.
 */
function alertIdOf(shown: string, caller: Principal): string {
  if (!shown.startsWith('~')) return httpScopedId(caller.userId, shown);
  if (caller.role === 'user')
    throw new ApiError('validation_failed', 'Invalid alert_id.', [
      { field: 'alert_id', message: 'must be the Idempotency-Key you set the alert with' },
    ]);
  return shown;
}

interface OrderBody {
  user_id: number;
  service_id: number;
  order_id: number;
  comment?: string;
}

function route<B>(
  path: string,
  summary: string,
  type: ClientCommand,
  schema: CommandRoute['schema'],
  toCommand: (body: B, caller: Principal) => CommandBody,
): CommandRoute {
  return { path, summary, type, schema, toCommand: toCommand as never };
}

export function registerCommandRoutes(app: FastifyInstance, ctx: ApiContext): void {
  for (const spec of COMMAND_ROUTES) {
    app.post(spec.path, (request, reply) => handleCommand(spec, request, reply, ctx));
  }
}

async function handleCommand(spec: CommandRoute, request: FastifyRequest, reply: FastifyReply, ctx: ApiContext) {
  const principal = await authenticate(request, ctx);
  const body = spec.toCommand(parseOr400(ctx.schemas[spec.schema], request.body) as never, principal);
  ctx.permissions.require(principal, spec.type, {
    userId: body.user_id,
    ...('service_id' in body ? { serviceId: body.service_id as number } : {}),
  });
  const waitMs = ctx.rateLimit.take(principal.userId);
  if (waitMs > 0) {
    void reply.header('retry-after', String(Math.ceil(waitMs / 1_000)));
    throw new ApiError('rate_limited');
  }
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
  if (!stored) await requireKnownRecipient(ctx, command);
  const client = publisherOf(ctx, { command_id: key });
  ctx.pending.add(command.id, command.user_id);
  const headers = ctx.attestation.headers(
    { id: command.id, fingerprint: commandFingerprint(command) },
    `${principal.role}:${principal.userId}`,
  );
  if (isAsync) {
    await publishOr503(key, () => client.publish(command, headers));
    return accepted(reply, key);
  }
  const replied = await publishOr503(key, () =>
    client.request(command, { timeoutMs: ctx.config.limits.replyWaitMs, headers }),
  );
  // A reply can be missed (this gateway restarted, a rebalance); the database has the truth.
  const outcome = replied ?? finalOutcome(await loadOutcome(ctx.pool, command.id));
  return outcome ? answer(reply, forCaller(principal, outcome), replied !== null) : accepted(reply, key);
}

/**
 * The client to publish with, or a 503 while commands cannot be published: Kafka is not
 * connected, or the consumers do not accept the key this gateway signs with (they would
 * dead-letter every command it sends: a silent 202, then a 404).
 */
export function publisherOf(ctx: ApiContext, details: Record<string, unknown>): CommandClient {
  if (!ctx.client)
    throw new ApiError('service_unavailable', 'Commands cannot be published: Kafka is not connected.', details);
  if (!ctx.signingKey.accepted)
    throw new ApiError(
      'service_unavailable',
      'Commands cannot be published: the consumers do not accept the key this gateway signs them with. Nothing was sent; retry later with the same Idempotency-Key.',
      details,
    );
  return ctx.client;
}

/**
 * Money sent to an id nobody holds would sit in that id's balance for good, so a transfer must
 * name a registered user or one with history, unless ALLOW_TRANSFERS_TO_NEW_ACCOUNTS. Checked
 * here, not in the ledger: a decision on the sender's partition must not depend on another
 * partition's progress, or a replay (which runs partitions at their own pace) could decide
 * otherwise than the live run did.
 */
async function requireKnownRecipient(ctx: ApiContext, command: Command): Promise<void> {
  if (command.type !== 'transfer' || ctx.config.auth.allowTransfersToNewAccounts) return;
  for (const { recipientId } of legsOf(command)) {
    if (!(await isKnownUser(ctx.pool, recipientId)))
      throw new ApiError('recipient_not_found', undefined, { recipient_id: recipientId });
  }
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
  return parseOr400(ctx.schemas.idempotencyKey, Array.isArray(header) ? header[0] : header);
}

function prefersAsync(request: FastifyRequest): boolean {
  const prefer = request.headers.prefer;
  return typeof prefer === 'string' && /(^|[,;\s])respond-async($|[,;\s])/i.test(prefer);
}

/**
 * A failed publish means Kafka did not acknowledge the command; it may still have been written
 * (an acknowledgement lost on the way back). The answer carries the key, so the caller can poll
 * it, or retry with it: either way the command has at most one effect.
 */
async function publishOr503<T>(key: string, publish: () => Promise<T>): Promise<T> {
  try {
    return await publish();
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(
      'service_unavailable',
      `Kafka did not acknowledge the command (${(error as Error).name}); it may or may not have been accepted. Poll /api/commands/${key} or retry with the same Idempotency-Key.`,
      { command_id: key },
    );
  }
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
