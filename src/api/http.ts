/** Request helpers shared by the routes: validation, authentication, authorization. */
import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { ApiError } from '../errors.ts';
import type { Role } from '../users/store.ts';
import type { Principal, TokenService } from './auth/tokens.ts';

/** Parses `input` with `schema`, or throws a 400 that names every bad field. */
export function parseOr400<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const details = result.error.issues.slice(0, 20).map((issue) => ({ field: issue.path.join('.') || '(body)', message: issue.message }));
  throw new ApiError('validation_failed', `Invalid ${details.map((d) => d.field).join(', ')}.`, details);
}

export async function authenticate(request: FastifyRequest, tokens: TokenService): Promise<Principal> {
  const header = request.headers.authorization;
  const match = typeof header === 'string' ? /^Bearer ([A-Za-z0-9._~+/=-]{1,4096})$/.exec(header) : null;
  if (!match) throw new ApiError('unauthorized');
  const principal = await tokens.verify(match[1]!, 'access');
  if (!principal) throw new ApiError('unauthorized', 'The access token is invalid or expired.');
  return principal;
}

/** A `user` acts only on its own account; `service` and `admin` act on any. */
export function requireAccount(principal: Principal, userId: number): void {
  if (principal.role === 'user' && principal.userId !== userId) {
    throw new ApiError('forbidden', 'A user may act only on their own account.');
  }
}

export function requireRole(principal: Principal, roles: readonly Role[]): void {
  if (!roles.includes(principal.role)) throw new ApiError('forbidden', `Only ${roles.join(' or ')} accounts may do this.`);
}
