/**
 * POST /api/token/ and /api/token/refresh/. Wrong credentials answer the same 401 whether or
 * not the user exists, after the same scrypt work; attempts are throttled per (username, client
 * address) and per address (auth/throttle.ts). Refresh tokens rotate: each refresh returns a new
 * pair, and a refresh token used twice revokes its whole family.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.ts';
import {
  DUMMY_PASSWORD_HASH,
  hashPassword,
  PasswordHashingBusyError,
  verifyPassword,
  type PasswordCheck,
} from '../../users/passwords.ts';
import { pruneRefreshTokens, storeRefreshToken, useRefreshToken } from '../../users/refresh-tokens.ts';
import { findUserById, findUserByUsername, setPasswordHash, type UserRecord } from '../../users/store.ts';
import type { ZodTypeProvider } from '../route.ts';
import type { ApiContext } from '../context.ts';

/** One sign-in in this many also deletes refresh tokens long expired, keeping the table bounded. */
const PRUNE_EVERY_SIGN_INS = 100;

export function registerAuthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.post(
    '/api/token/',
    {
      schema: { body: ctx.schemas.login },
      config: {
        doc: {
          summary: 'Log in: get access and refresh tokens',
          tag: 'auth',
          auth: false,
          responses: { '200': '{access, refresh}', '401': 'Wrong credentials.', '429': 'Too many failed attempts.' },
        },
      },
    },
    async (request, reply) => {
      const { username, password } = request.body;
      const waitMs = ctx.throttle.begin(username, request.ip);
      if (waitMs > 0) {
        void reply.header('retry-after', String(Math.ceil(waitMs / 1000)));
        throw ctx.throttle.accountWaitMs(username) > 0
          ? new ApiError(
              'too_many_requests',
              'This account is locked for a while after many failed sign-ins from several addresses; try again after Retry-After seconds.',
            )
          : new ApiError('too_many_requests');
      }
      const user = await findUserByUsername(ctx.pool, username);
      const check = await checkPasswordFrom(request.ip, password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
      if (!user || !check.ok || user.disabled) throw new ApiError('invalid_credentials');
      ctx.throttle.succeeded(username, request.ip);
      // A hash made with weaker parameters is replaced now that the password is known.
      if (check.outdated) await setPasswordHash(ctx.pool, user.id, await hashPassword(password));
      if (Math.random() < 1 / PRUNE_EVERY_SIGN_INS) await pruneRefreshTokens(ctx.pool);
      return issuePair(ctx, user, randomUUID());
    },
  );

  typed.post(
    '/api/token/refresh/',
    {
      schema: { body: ctx.schemas.refresh },
      config: {
        doc: {
          summary: 'Get a new access token',
          tag: 'auth',
          auth: false,
          responses: { '200': '{access, refresh}', '401': 'Invalid refresh token.' },
        },
      },
    },
    async (request) => {
      const { refresh } = request.body;
      const claims = await ctx.tokens.verify(refresh, 'refresh');
      if (!claims) throw new ApiError('unauthorized', 'The refresh token is invalid or expired.');
      // Read fresh, not from the cache: a refresh must see a revocation at once.
      const user = await findUserById(ctx.pool, claims.userId);
      if (!user || user.disabled || user.tokenVersion !== claims.version)
        throw new ApiError('unauthorized', 'This sign-in was revoked; sign in again.');
      const use = await useRefreshToken(ctx.pool, claims.jti, user.id);
      if (use === 'reused')
        throw new ApiError(
          'unauthorized',
          'This refresh token was already used, so every token of its sign-in is now revoked; sign in again.',
        );
      if (use !== 'ok') throw new ApiError('unauthorized', 'The refresh token is invalid or expired.');
      return issuePair(ctx, user, claims.family!);
    },
  );
}

/**
 * Password checks under way per client address. The hashing queue is shared by everyone
 * (PASSWORD_HASHES_QUEUED_MAX); without this bound, a few addresses at their throttle's
 * allowance could fill it, and every other sign-in would get 503.
 */
export const PASSWORD_CHECKS_PER_ADDRESS_MAX = 4;
const checksByAddress = new Map<string, number>();

async function checkPasswordFrom(address: string, password: string, hash: string): Promise<PasswordCheck> {
  const running = checksByAddress.get(address) ?? 0;
  if (running >= PASSWORD_CHECKS_PER_ADDRESS_MAX)
    throw new ApiError('too_many_requests', 'Too many sign-ins from this address at once; wait for them to finish.');
  checksByAddress.set(address, running + 1);
  try {
    return await checkPassword(password, hash);
  } finally {
    const left = (checksByAddress.get(address) ?? 1) - 1;
    if (left === 0) checksByAddress.delete(address);
    else checksByAddress.set(address, left);
  }
}

async function checkPassword(password: string, hash: string): Promise<PasswordCheck> {
  try {
    return await verifyPassword(password, hash);
  } catch (error) {
    if (error instanceof PasswordHashingBusyError)
      throw new ApiError('service_unavailable', 'Too many sign-ins at once; try again in a moment.');
    throw error;
  }
}

async function issuePair(
  ctx: ApiContext,
  user: UserRecord,
  family: string,
): Promise<{ access: string; refresh: string }> {
  const subject = { userId: user.id, role: user.role, version: user.tokenVersion };
  const refresh = await ctx.tokens.issueRefresh(subject, family);
  await storeRefreshToken(ctx.pool, { jti: refresh.jti, family, userId: user.id, expiresAt: refresh.expiresAt });
  return { access: await ctx.tokens.issueAccess(subject), refresh: refresh.token };
}
