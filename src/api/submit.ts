/**
 * What the single command endpoints and the bulk endpoint share once their commands are built:
 * the caller's permission and rate limit, the recipients' existence, and the publishing itself
 * (attested headers, the pending list, publish-or-503, waiting for replies).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { CommandClient } from '../client/command-client.ts';
import { commandFingerprint, type Command } from '../commands/schema.ts';
import { ApiError } from '../errors.ts';
import { legsOf } from '../ledger/core.ts';
import type { CommandReply } from '../ledger/outcome.ts';
import type { ApiContext } from './context.ts';
import type { ClientCommand, Principal } from '../commands/permissions.ts';
import { isKnownUser } from './read-model.ts';

/** Whether the caller asked to be answered before the command is decided (`Prefer: respond-async`). */
export function prefersAsync(request: FastifyRequest): boolean {
  const prefer = request.headers.prefer;
  return typeof prefer === 'string' && /(^|[,;\s])respond-async($|[,;\s])/i.test(prefer);
}

/** Throws 403 unless `principal` may send `command` (its type, its user, its service). */
export function requirePermission(ctx: ApiContext, principal: Principal, command: Omit<Command, 'id'>): void {
  ctx.permissions.require(principal, command.type as ClientCommand, {
    userId: command.user_id,
    ...('service_id' in command ? { serviceId: command.service_id as number } : {}),
  });
}

/** Takes one request from the caller's rate limit, or throws 429 with Retry-After. */
export function takeRateToken(ctx: ApiContext, principal: Principal, reply: FastifyReply): void {
  const waitMs = ctx.rateLimit.take(principal.userId);
  if (waitMs <= 0) return;
  void reply.header('retry-after', String(Math.ceil(waitMs / 1_000)));
  throw new ApiError('rate_limited');
}

/**
 * Money sent to an id nobody holds would sit in that id's balance for good, so a transfer must
 * name a registered user or one with history, unless ALLOW_TRANSFERS_TO_NEW_ACCOUNTS. Checked
 * here, not in the ledger: a decision on the sender's partition must not depend on another
 * partition's progress, or a replay (which runs partitions at their own pace) could decide
 * otherwise than the live run did.
 */
export async function requireKnownRecipients(ctx: ApiContext, command: Command): Promise<void> {
  if (command.type !== 'transfer' || ctx.config.auth.allowTransfersToNewAccounts) return;
  for (const { recipientId } of legsOf(command)) {
    if (!(await isKnownUser(ctx.pool, recipientId)))
      throw new ApiError('recipient_not_found', undefined, { recipient_id: recipientId });
  }
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

export interface Submission {
  readonly client: CommandClient;
  readonly principal: Principal;
  readonly commands: readonly Command[];
  /** Answer before they are decided: publish only. */
  readonly async: boolean;
  /** What a 503 says of what was sent, and how to find out what became of it. */
  readonly unacknowledged: (errorName: string) => ApiError;
}

/**
 * Publishes the commands, attested as the caller's, in order and in one produce request, and
 * waits up to REPLY_WAIT_MS for their replies (none when async): a reply not received in time is
 * null. A bulk holds at most half of the reply waits (command-client.ts); one command waits as a
 * single request.
 */
export async function submitCommands(ctx: ApiContext, submission: Submission): Promise<Array<CommandReply | null>> {
  const { client, principal, commands } = submission;
  const attested = `${principal.role}:${principal.userId}`;
  const headersOf = (command: Command) =>
    ctx.attestation.headers({ id: command.id, fingerprint: commandFingerprint(command) }, attested);
  for (const command of commands) ctx.pending.add(command.id, command.user_id);
  const timeoutMs = ctx.config.limits.replyWaitMs;
  try {
    if (submission.async) {
      if (commands.length === 1) await client.publish(commands[0]!, headersOf(commands[0]!));
      else await client.publishMany(commands, headersOf);
      return commands.map(() => null);
    }
    if (commands.length === 1)
      return [await client.request(commands[0]!, { timeoutMs, headers: headersOf(commands[0]!) })];
    return await client.requestMany(commands, { timeoutMs, headersOf });
  } catch (error) {
    if (error instanceof ApiError) throw error;
    throw submission.unacknowledged((error as Error).name);
  }
}
