/**
 * POST /api/token/ and /api/token/refresh/. Wrong credentials answer the same 401 whether or
 * not the user exists, after the same scrypt work; failures are throttled per username and
 * per address.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.ts';
import { DUMMY_PASSWORD_HASH, verifyPassword } from '../../users/passwords.ts';
import { findUserById, findUserByUsername } from '../../users/store.ts';
import { parseOr400 } from '../http.ts';
import type { ApiContext } from '../context.ts';

export function registerAuthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.post('/api/token', async (request, reply) => {
    const { username, password } = parseOr400(ctx.schemas.login, request.body);
    const keys = [`user:${username}`, `addr:${request.ip}`];
    const waitMs = Math.max(...keys.map((key) => ctx.throttle.retryAfterMs(key)));
    if (waitMs > 0) {
      void reply.header('retry-after', String(Math.ceil(waitMs / 1000)));
      throw new ApiError('too_many_requests');
    }
    const user = await findUserByUsername(ctx.pool, username);
    const passwordOk = await verifyPassword(password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
    if (!user || !passwordOk || user.disabled) {
      for (const key of keys) ctx.throttle.recordFailure(key);
      throw new ApiError('invalid_credentials');
    }
    ctx.throttle.reset(keys[0]!);
    const principal = { userId: user.id, role: user.role };
    return { access: await ctx.tokens.issue(principal, 'access'), refresh: await ctx.tokens.issue(principal, 'refresh') };
  });

  app.post('/api/token/refresh', async (request) => {
    const { refresh } = parseOr400(ctx.schemas.refresh, request.body);
    const principal = await ctx.tokens.verify(refresh, 'refresh');
    if (!principal) throw new ApiError('unauthorized', 'The refresh token is invalid or expired.');
    // The role and the account's state are read again: a disabled user gets no new access token.
    const user = await findUserById(ctx.pool, principal.userId);
    if (!user || user.disabled) throw new ApiError('unauthorized', 'This account can no longer sign in.');
    return { access: await ctx.tokens.issue({ userId: user.id, role: user.role }, 'access') };
  });
}
