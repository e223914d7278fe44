/**
 * POST /api/commands/bulk: up to BULK_COMMANDS_MAX commands in one request, each with its own
 * `type`, `idempotency_key` and the body of its single endpoint, under the same permissions.
 * Every item is validated on its own: a bad one gets its own error and does not block the
 * others. The valid ones are published in one produce request, in the order given (so one
 * user's commands keep their order). Then:
 *   - with `Prefer: respond-async`: 202 and a batch status URL listing each item's state;
 *   - otherwise: 200 with each item's outcome (compact: its transaction ids and balances; the
 *     full transaction JSON is at /api/commands/<key>) once all are decided, or 202 and the status URL
 *     after REPLY_WAIT_MS.
 * GET /api/commands/bulk/<batch id> lists each item's state; only its sender (or an admin) sees it.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { commandFingerprint, httpScopedId, type Command } from '../../commands/schema.ts';
import { ApiError } from '../../errors.ts';
import type { CommandReply } from '../../ledger/outcome.ts';
import { legsOf } from '../../ledger/core.ts';
import type { ApiContext } from '../context.ts';
import { authenticate, parseOr400 } from '../http.ts';
import type { Principal } from '../permissions.ts';
import { isKnownUser } from '../read-model.ts';
import { COMMAND_ROUTES, forCaller } from './commands.ts';

export const BULK_PATH = '/api/commands/bulk';

/** An item that could not be published: its own 4xx-style error. */
interface ItemError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly details?: unknown;
}

type Prepared =
  | { readonly index: number; readonly key: string; readonly command: Command }
  | { readonly index: number; readonly key: string | null; readonly error: ItemError };

/** What the batch row keeps per item: enough to list its state later. */
interface StoredItem {
  readonly key: string | null;
  readonly command_id: string | null;
  /** What the item asked for: a command decided under its id with another fingerprint is not its. */
  readonly fingerprint?: string;
  readonly error: ItemError | null;
}

export function registerBulkRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post(BULK_PATH, { bodyLimit: ctx.config.limits.bulkBodyBytesMax }, (request, reply) =>
    handleBulk(request, reply, ctx),
  );
  app.get(`${BULK_PATH}/:id`, async (request) => {
    const principal = await authenticate(request, ctx);
    const { id } = parseOr400(ctx.schemas.bulkParams, request.params);
    const items = await loadBatch(ctx.pool, id, principal);
    return { batch_id: id, items: await itemStates(ctx.pool, items) };
  });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function handleBulk(request: FastifyRequest, reply: FastifyReply, ctx: ApiContext) {
  const principal = await authenticate(request, ctx);
  // A caller out of tokens is refused whole, before any item costs a look-up or a stored row.
  const waitMs = ctx.rateLimit.take(principal.userId);
  if (waitMs > 0) {
    void reply.header('retry-after', String(Math.ceil(waitMs / 1_000)));
    throw new ApiError('rate_limited');
  }
  const { commands } = parseOr400(ctx.schemas.bulk, request.body);
  const seenKeys = new Set<string>();
  const prepared: Prepared[] = [];
  for (const [index, raw] of commands.entries()) prepared.push(await prepare(raw, index, principal, ctx, seenKeys));
  const valid = prepared.filter((p): p is Extract<Prepared, { command: Command }> => 'command' in p);
  const batchId = randomUUID();
  await storeBatch(ctx.pool, batchId, principal, prepared);
  const location = `${BULK_PATH}/${batchId}`;
  const client = ctx.client;
  if (valid.length > 0 && !client)
    throw new ApiError('service_unavailable', 'Commands cannot be published: Kafka is not connected.', {
      batch_id: batchId,
    });
  const headersOf = (command: Command) =>
    ctx.attestation.headers(
      { id: command.id, fingerprint: commandFingerprint(command) },
      `${principal.role}:${principal.userId}`,
    );
  for (const item of valid) ctx.pending.add(item.command.id, item.command.user_id);
  const commandsToSend = valid.map((item) => item.command);
  if (isAsync(request)) {
    if (valid.length > 0) await publishOr503(batchId, () => client!.publishMany(commandsToSend, headersOf));
    return reply
      .code(202)
      .header('location', location)
      .send(batchAnswer(batchId, prepared, new Map(), principal));
  }
  const replies =
    valid.length === 0
      ? []
      : await publishOr503(batchId, () =>
          client!.requestMany(commandsToSend, { timeoutMs: ctx.config.limits.replyWaitMs, headersOf }),
        );
  const outcomes = new Map(valid.map((item, i) => [item.index, replies[i] ?? null]));
  const complete = [...outcomes.values()].every((outcome) => outcome !== null);
  const body = batchAnswer(batchId, prepared, outcomes, principal);
  return complete ? reply.code(200).send(body) : reply.code(202).header('location', location).send(body);
}

/** One item as a command, or the error that keeps it from being one. */
async function prepare(
  raw: unknown,
  index: number,
  principal: Principal,
  ctx: ApiContext,
  seenKeys: Set<string>,
): Promise<Prepared> {
  const { type, idempotency_key: rawKey, ...body } = isPlainObject(raw) ? raw : {};
  // Kept, stored and echoed only once valid: a NUL or a lone surrogate cannot go to jsonb.
  const parsedKey = ctx.schemas.idempotencyKey.safeParse(rawKey);
  const key = parsedKey.success ? parsedKey.data : null;
  try {
    if (!isPlainObject(raw))
      throw new ApiError('validation_failed', 'Invalid command.', [
        { field: '(item)', message: 'must be an object: {type, idempotency_key, ...}' },
      ]);
    const spec = COMMAND_ROUTES.find((route) => route.type === type);
    if (!spec)
      throw new ApiError('validation_failed', 'Invalid type.', [
        { field: 'type', message: `must be one of ${COMMAND_ROUTES.map((r) => r.type).join(', ')}` },
      ]);
    const idempotencyKey = parseOr400(ctx.schemas.idempotencyKey, rawKey);
    if (seenKeys.has(idempotencyKey))
      throw new ApiError('validation_failed', 'Invalid idempotency_key.', [
        { field: 'idempotency_key', message: 'is used by an earlier item of this bulk' },
      ]);
    seenKeys.add(idempotencyKey);
    const commandBody = spec.toCommand(parseOr400(ctx.schemas[spec.schema], body) as never, principal);
    ctx.permissions.require(principal, spec.type, {
      userId: commandBody.user_id,
      ...('service_id' in commandBody ? { serviceId: commandBody.service_id as number } : {}),
    });
    const command = { id: httpScopedId(principal.userId, idempotencyKey), ...commandBody } as Command;
    // Spent before the recipients' look-ups, as on the single endpoints.
    if (ctx.rateLimit.take(principal.userId) > 0) throw new ApiError('rate_limited');
    await requireKnownRecipients(ctx, command);
    return { index, key: idempotencyKey, command };
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const itemError = { status: error.status, code: error.publicCode, message: error.message };
    return { index, key, error: error.details === undefined ? itemError : { ...itemError, details: error.details } };
  }
}

async function requireKnownRecipients(ctx: ApiContext, command: Command): Promise<void> {
  if (command.type !== 'transfer' || ctx.config.auth.allowTransfersToNewAccounts) return;
  for (const { recipientId } of legsOf(command)) {
    if (!(await isKnownUser(ctx.pool, recipientId)))
      throw new ApiError('recipient_not_found', undefined, { recipient_id: recipientId });
  }
}

/** Each item: its error, its outcome as the single endpoint would answer it, or `pending`. */
function batchAnswer(
  batchId: string,
  prepared: readonly Prepared[],
  outcomes: ReadonlyMap<number, CommandReply | null>,
  principal: Principal,
) {
  const items = prepared.map((item) => {
    const common = { index: item.index, idempotency_key: item.key };
    if ('error' in item) return { ...common, status: 'invalid', error: item.error };
    const outcome = outcomes.get(item.index);
    if (!outcome) return { ...common, status: 'pending' };
    // Compact: a bulk answers a thousand items, and each one's full transaction JSON is at
    // /api/commands/<key>. The ids, the balances and whether it was a repeat say what happened.
    if (outcome.status === 'rejected')
      return { ...common, status: 'rejected', code: outcome.code, message: outcome.message };
    const seen = forCaller(principal, outcome);
    return {
      ...common,
      status: 'applied',
      duplicate: seen.duplicate,
      transaction_ids: seen.transactions.map((t) => t.id),
      balances: seen.balances,
    };
  });
  return { batch_id: batchId, status_url: `${BULK_PATH}/${batchId}`, items };
}

async function storeBatch(db: pg.Pool, id: string, principal: Principal, prepared: readonly Prepared[]) {
  const items: StoredItem[] = prepared.map((item) =>
    'command' in item
      ? { key: item.key, command_id: item.command.id, fingerprint: commandFingerprint(item.command), error: null }
      : { key: item.key, command_id: null, error: item.error },
  );
  await db.query('INSERT INTO bulk_batches (id, principal_user_id, items) VALUES ($1, $2, $3)', [
    id,
    principal.userId,
    JSON.stringify(items),
  ]);
}

async function loadBatch(db: pg.Pool, id: string, principal: Principal): Promise<StoredItem[]> {
  const { rows } = await db.query<{ principal_user_id: string; items: StoredItem[] }>(
    'SELECT principal_user_id, items FROM bulk_batches WHERE id = $1',
    [id],
  );
  const row = rows[0];
  // Another caller's batch is answered as missing: its existence is none of their business.
  if (!row || (Number(row.principal_user_id) !== principal.userId && principal.role !== 'admin'))
    throw new ApiError('not_found', 'No such batch.');
  return row.items;
}

/** Each stored item's state now: invalid, pending, applied or rejected (with its code). */
async function itemStates(db: pg.Pool, items: readonly StoredItem[]) {
  const ids = items.flatMap((item) => (item.command_id ? [item.command_id] : []));
  const { rows } = await db.query<{ id: string; status: string; code: string; fingerprint: string }>(
    'SELECT id, status, code, fingerprint FROM commands WHERE id = ANY($1::text[])',
    [ids],
  );
  const decided = new Map(rows.map((row) => [row.id, row]));
  return items.map((item, index) => {
    const common = { index, idempotency_key: item.key };
    if (item.error) return { ...common, status: 'invalid', error: item.error };
    const row = decided.get(item.command_id!);
    if (!row) return { ...common, status: 'pending' };
    // The key was decided for another command (an earlier request with the same key): this item was refused.
    if (item.fingerprint !== undefined && row.fingerprint !== item.fingerprint)
      return { ...common, status: 'rejected', code: 'idempotency_key_reused' };
    return { ...common, status: row.status, code: row.code };
  });
}

function isAsync(request: FastifyRequest): boolean {
  const prefer = request.headers.prefer;
  return typeof prefer === 'string' && /(^|[,;\s])respond-async($|[,;\s])/i.test(prefer);
}

async function publishOr503<T>(batchId: string, publish: () => Promise<T>): Promise<T> {
  try {
    return await publish();
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw new ApiError(
      'service_unavailable',
      `Kafka did not acknowledge the bulk (${(error as Error).name}); its commands may or may not have been accepted. Poll ${BULK_PATH}/${batchId} or send the bulk again: each item's idempotency key keeps it to one effect.`,
      { batch_id: batchId },
    );
  }
}
