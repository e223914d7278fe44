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
 * GET /api/commands/bulk/<batch id> lists each valid item's state; only its sender (or an admin)
 * sees it.
 *
 * What a caller can store is bounded: a bulk takes one rate-limit token per valid item (and one
 * at least), invalid items are answered and never stored (a bulk with none valid stores nothing
 * and has no status URL), a caller stores at most BULK_ITEMS_STORED_PER_HOUR_MAX items an hour,
 * and a bulk's row is deleted BULK_BATCHES_RETENTION_S after it was sent (BulkBatchPruner).
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pg from 'pg';
import { COMMAND_CATALOG } from '../../commands/catalog.ts';
import { CLIENT_COMMAND_TYPES, type ClientCommandType } from '../../commands/command-types.ts';
import { commandFingerprint, httpKeySchema, httpScopedId, type Command } from '../../commands/schema.ts';
import { ApiError } from '../../errors.ts';
import type { CommandReply } from '../../ledger/outcome.ts';
import type { ApiContext } from '../context.ts';
import { inTransaction } from '../../db/pool.ts';
import { parseOr400 } from '../http.ts';
import { principalOf, type RouteDoc, type ZodTypeProvider } from '../route.ts';
import {
  prefersAsync,
  publisherOf,
  requireKnownRecipients,
  requirePermission,
  submitCommands,
  takeRateToken,
} from '../submit.ts';
import type { Principal } from '../../commands/permissions.ts';
import { COMMAND_HEADERS, forCaller } from './commands.ts';

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

/**
 * What the batch row keeps per valid item: enough to list its state later. Rows written before
 * invalid items stopped being stored also hold those, with `error` and no command id.
 */
interface StoredItem {
  /** The item's place in the bulk as sent; absent in older rows, where the place in the list is it. */
  readonly index?: number;
  readonly key: string | null;
  readonly command_id: string | null;
  /** What the item asked for: a command decided under its id with another fingerprint is not its. */
  readonly fingerprint?: string;
  readonly error?: ItemError | null;
}

export function registerBulkRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.post(
    BULK_PATH,
    {
      bodyLimit: ctx.config.limits.bulkBodyBytesMax,
      schema: { body: ctx.schemas.bulk },
      // A caller out of tokens is refused whole, before its items are even parsed.
      preValidation: async (request, reply) => takeRateToken(ctx, principalOf(request), reply),
      config: { doc: BULK_DOC },
    },
    (request, reply) => handleBulk(request.body.commands, request, reply, ctx),
  );
  typed.get(
    `${BULK_PATH}/:id`,
    {
      schema: { params: ctx.schemas.bulkParams },
      config: {
        doc: {
          summary: "A bulk's valid items and their states now",
          tag: 'reads',
          auth: true,
          responses: {
            '200': '{batch_id, items: [{index, idempotency_key, status: pending|applied|rejected, code}]}',
            '404': "Unknown batch, or another caller's.",
          },
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const items = await loadBatch(ctx.pool, id, principalOf(request));
      return { batch_id: id, items: await itemStates(ctx.pool, items) };
    },
  );
}

const BULK_DOC: RouteDoc = {
  summary:
    'Up to BULK_COMMANDS_MAX commands in one request: each item {type, idempotency_key, ...the body of its endpoint}, validated and permitted on its own, all valid ones published in one produce',
  tag: 'commands',
  auth: true,
  headers: COMMAND_HEADERS.filter((header) => header.name === 'Prefer'),
  responses: {
    '200':
      '{batch_id, status_url, items: [{index, idempotency_key, status: applied|rejected|invalid, result|code|error}]}: every item decided (batch_id and status_url are null when no item was valid)',
    '202':
      'Prefer: respond-async, or not all decided within REPLY_WAIT_MS: the same, with pending items, and Location: the batch status URL',
    '400':
      'No commands, more than BULK_COMMANDS_MAX, or not an array (a bad item is reported in its own entry instead)',
    '413': 'The body is larger than BULK_BODY_BYTES_MAX.',
    '429':
      'Over the rate limit (`rate_limited`: one token per valid item), or over BULK_ITEMS_STORED_PER_HOUR_MAX (`bulk_storage_exceeded`)',
    '503': 'Kafka did not acknowledge the bulk; send it again: the idempotency keys keep each item to one effect.',
  },
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function handleBulk(commands: readonly unknown[], request: FastifyRequest, reply: FastifyReply, ctx: ApiContext) {
  const principal = principalOf(request);
  const seenKeys = new Set<string>();
  const prepared: Prepared[] = [];
  // The request's own token pays for its first valid item; each further one takes its own.
  const tokens = { spent: 0 };
  for (const [index, raw] of commands.entries())
    prepared.push(await prepare(raw, index, principal, ctx, seenKeys, tokens));
  const valid = prepared.filter((p): p is Extract<Prepared, { command: Command }> => 'command' in p);
  if (valid.length === 0) return reply.code(200).send(batchAnswer(null, prepared, new Map(), principal));
  // Before anything is stored: a bulk that cannot be published leaves no status to poll.
  const client = publisherOf(ctx, {});
  const batchId = randomUUID();
  await storeBatch(ctx, batchId, principal, valid, reply);
  const location = `${BULK_PATH}/${batchId}`;
  const isAsync = prefersAsync(request);
  const replies = await submitCommands(ctx, {
    client,
    principal,
    commands: valid.map((item) => item.command),
    async: isAsync,
    unacknowledged: (name) =>
      new ApiError(
        'service_unavailable',
        `Kafka did not acknowledge the bulk (${name}); its commands may or may not have been accepted. Poll ${location} or send the bulk again: each item's idempotency key keeps it to one effect.`,
        { batch_id: batchId },
      ),
  });
  if (isAsync)
    return reply
      .code(202)
      .header('location', location)
      .send(batchAnswer(batchId, prepared, new Map(), principal));
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
  tokens: { spent: number },
): Promise<Prepared> {
  const { type, idempotency_key: rawKey, ...body } = isPlainObject(raw) ? raw : {};
  // Kept, stored and echoed only once valid: a NUL or a lone surrogate cannot go to jsonb.
  const parsedKey = httpKeySchema.safeParse(rawKey);
  const key = parsedKey.success ? parsedKey.data : null;
  try {
    if (!isPlainObject(raw))
      throw new ApiError('validation_failed', 'Invalid command.', [
        { field: '(item)', message: 'must be an object: {type, idempotency_key, ...}' },
      ]);
    if (!(CLIENT_COMMAND_TYPES as readonly unknown[]).includes(type))
      throw new ApiError('validation_failed', 'Invalid type.', [
        { field: 'type', message: `must be one of ${CLIENT_COMMAND_TYPES.join(', ')}` },
      ]);
    const commandType = type as ClientCommandType;
    const idempotencyKey = parseOr400(httpKeySchema, rawKey);
    if (seenKeys.has(idempotencyKey))
      throw new ApiError('validation_failed', 'Invalid idempotency_key.', [
        { field: 'idempotency_key', message: 'is used by an earlier item of this bulk' },
      ]);
    seenKeys.add(idempotencyKey);
    const commandBody = COMMAND_CATALOG[commandType].http.toCommand(
      parseOr400(ctx.schemas.commandBodies[commandType], body),
      principal,
    );
    requirePermission(ctx, principal, commandBody as Omit<Command, 'id'>);
    const command = { id: httpScopedId(principal.userId, idempotencyKey), ...commandBody } as Command;
    // Spent before the recipients' look-ups, as on the single endpoints.
    if (tokens.spent > 0 && ctx.rateLimit.take(principal.userId) > 0) throw new ApiError('rate_limited');
    tokens.spent += 1;
    await requireKnownRecipients(ctx, command);
    return { index, key: idempotencyKey, command };
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    const itemError = { status: error.status, code: error.publicCode, message: error.message };
    return { index, key, error: error.details === undefined ? itemError : { ...itemError, details: error.details } };
  }
}

/** Each item: its error, its outcome as the single endpoint would answer it, or `pending`. */
function batchAnswer(
  batchId: string | null,
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
  // Nothing valid, nothing stored: the errors above are the whole answer.
  return { batch_id: batchId, status_url: batchId === null ? null : `${BULK_PATH}/${batchId}`, items };
}

// Stores the bulk only if the caller's bulks of the last hour, with this one, stay within the
// hourly cap; a lock of the caller's (withCallerLock) keeps two bulks at once from both passing it.
const SQL_STORE_BATCH = `
  WITH stored AS (
    SELECT coalesce(sum(item_count), 0) AS items, min(created_at) AS oldest FROM bulk_batches
    WHERE principal_user_id = $2 AND created_at > now() - interval '1 hour'
  ), inserted AS (
    INSERT INTO bulk_batches (id, principal_user_id, items, item_count)
    SELECT $1, $2, $3, $4::integer FROM stored WHERE stored.items + $4::integer <= $5::bigint
    RETURNING id
  )
  SELECT (SELECT count(*) FROM inserted)::int AS stored,
         ceil(extract(epoch FROM (SELECT oldest FROM stored) + interval '1 hour' - now()))::int AS retry_after_s`;

type Valid = Extract<Prepared, { command: Command }>;

async function storeBatch(
  ctx: ApiContext,
  id: string,
  principal: Principal,
  valid: readonly Valid[],
  reply: FastifyReply,
) {
  const items: StoredItem[] = valid.map((item) => ({
    index: item.index,
    key: item.key,
    command_id: item.command.id,
    fingerprint: commandFingerprint(item.command),
  }));
  const { rows } = await withCallerLock(ctx.pool, principal.userId, (db) =>
    db.query<{ stored: number; retry_after_s: number | null }>(SQL_STORE_BATCH, [
      id,
      principal.userId,
      JSON.stringify(items),
      items.length,
      ctx.config.limits.bulkItemsStoredPerHourMax,
    ]),
  );
  if (rows[0]!.stored === 1) return;
  void reply.header('retry-after', String(Math.max(1, rows[0]!.retry_after_s ?? 3_600)));
  throw new ApiError('bulk_storage_exceeded');
}

/** Runs `work` in a transaction holding an advisory lock of the caller's: their bulks store one at a time. */
async function withCallerLock<T>(pool: pg.Pool, userId: number, work: (db: pg.PoolClient) => Promise<T>): Promise<T> {
  return inTransaction(pool, async (db) => {
    await db.query('SELECT pg_advisory_xact_lock($1, $2)', [BULK_LOCK_CLASS, userId]);
    return work(db);
  });
}

/** The first key of the advisory locks that serialize one caller's bulk stores (the second is the user id). */
const BULK_LOCK_CLASS = 72_405_131;

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

/** Each stored item's state now: pending, applied or rejected (with its code); invalid in older rows. */
async function itemStates(db: pg.Pool, items: readonly StoredItem[]) {
  const ids = items.flatMap((item) => (item.command_id ? [item.command_id] : []));
  const { rows } = await db.query<{ id: string; status: string; code: string; fingerprint: string }>(
    'SELECT id, status, code, fingerprint FROM commands WHERE id = ANY($1::text[])',
    [ids],
  );
  const decided = new Map(rows.map((row) => [row.id, row]));
  return items.map((item, position) => {
    const common = { index: item.index ?? position, idempotency_key: item.key };
    if (item.error) return { ...common, status: 'invalid', error: item.error };
    const row = decided.get(item.command_id!);
    if (!row) return { ...common, status: 'pending' };
    // The key was decided for another command (an earlier request with the same key): this item was refused.
    if (item.fingerprint !== undefined && row.fingerprint !== item.fingerprint)
      return { ...common, status: 'rejected', code: 'idempotency_key_reused' };
    return { ...common, status: row.status, code: row.code };
  });
}

/** Rows one delete removes at most, and deletes one pruning run makes at most: a bounded run. */
const PRUNED_ROWS_PER_DELETE_MAX = 1_000;
const PRUNE_DELETES_PER_RUN_MAX = 100;

const SQL_PRUNE = `
  DELETE FROM bulk_batches WHERE id IN (
    SELECT id FROM bulk_batches WHERE created_at < now() - make_interval(secs => $1) ORDER BY created_at LIMIT $2)`;

/**
 * Deletes the bulks sent more than `retentionS` ago, a thousand at a time; returns how many. Their
 * items' outcomes stay at /api/commands/<key>: only the batch's status URL goes.
 */
export async function pruneBulkBatches(db: pg.Pool, retentionS: number): Promise<number> {
  let pruned = 0;
  for (let i = 0; i < PRUNE_DELETES_PER_RUN_MAX; i += 1) {
    const { rowCount } = await db.query(SQL_PRUNE, [retentionS, PRUNED_ROWS_PER_DELETE_MAX]);
    pruned += rowCount ?? 0;
    if ((rowCount ?? 0) < PRUNED_ROWS_PER_DELETE_MAX) break;
  }
  return pruned;
}
