/** Request helpers shared by the routes: validation and authentication. */
import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ApiError } from '../errors.ts';
import type { TokenService } from './auth/tokens.ts';
import type { TokenStates } from './auth/token-states.ts';
import type { Principal } from '../commands/permissions.ts';

/** Parses `input` with `schema`, or throws a 400 that names every bad field. */
export function parseOr400<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const details = result.error.issues
    .slice(0, 20)
    .map((issue) => ({ field: issue.path.join('.') || '(body)', message: issue.message }));
  const fields = [...new Set(details.map((d) => d.field))];
  throw new ApiError('validation_failed', `Invalid ${fields.join(', ')}.`, details);
}

/**
 * The caller, from a valid access token whose version is still the user's current one (within
 * TOKEN_STATE_CACHE_MS). Role, service bindings and granted actions come from that current state,
 * not the token.
 */
export async function authenticate(
  request: FastifyRequest,
  auth: { tokens: TokenService; tokenStates: TokenStates },
): Promise<Principal> {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer ([A-Za-z0-9._~+/=-]{1,4096})$/.exec(header) : null;
  if (!match) throw new ApiError('unauthorized');
  const claims = await auth.tokens.verify(match[1]!, 'access');
  if (!claims) throw new ApiError('unauthorized', 'The access token is invalid or expired.');
  const state = await auth.tokenStates.get(claims.userId);
  if (!state || state.disabled || state.version !== claims.version)
    throw new ApiError('unauthorized', 'The access token was revoked; sign in again.');
  return { userId: claims.userId, role: state.role, services: state.services, actions: state.actions };
}
