/**
 * JWTs with jose: short-lived access tokens and longer refresh tokens, HS256 only. The token
 * kind is a claim (`typ`), so a refresh token is never accepted as an access token or back.
 */
import { createSecretKey, type KeyObject } from 'node:crypto';
import { jwtVerify, SignJWT, errors as joseErrors } from 'jose';
import type { Config } from '../../config.ts';
import { ROLES, type Role } from '../../users/store.ts';

export interface Principal {
  readonly userId: number;
  readonly role: Role;
}

type TokenKind = 'access' | 'refresh';
const ALGORITHM = 'HS256';
/** Tokens already verified, kept until they expire: jose's HMAC check costs about 250 µs. */
export const VERIFIED_TOKENS_CACHED_MAX = 10_000;

export class TokenService {
  // A KeyObject, not raw bytes: jose would import raw bytes into a new key on every call,
  // which made verifying a token cost about 300 µs.
  private readonly key: KeyObject;
  constructor(private readonly jwt: Config['jwt']) {
    this.key = createSecretKey(Buffer.from(jwt.secret, 'utf8'));
  }

  async issue(principal: Principal, kind: TokenKind): Promise<string> {
    return new SignJWT({ user_id: principal.userId, role: principal.role, typ: kind })
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
      .setSubject(String(principal.userId))
      .setIssuer(this.jwt.issuer)
      .setAudience(this.jwt.audience)
      .setIssuedAt()
      .setExpirationTime(`${kind === 'access' ? this.jwt.accessTtlS : this.jwt.refreshTtlS}s`)
      .sign(this.key);
  }

  /** Returns the principal, or null for any token that is not a valid one of `kind`. */
  async verify(token: string, kind: TokenKind): Promise<Principal | null> {
    const cacheKey = `${kind}:${token}`;
    const cached = this.verified.get(cacheKey);
    if (cached && cached.expiresAtMs > Date.now()) return cached.principal;
    if (cached) this.verified.delete(cacheKey);
    const principal = await this.verifyUncached(token, kind);
    if (principal) this.remember(cacheKey, principal.principal, principal.expiresAtMs);
    return principal?.principal ?? null;
  }

  private readonly verified = new Map<string, { principal: Principal; expiresAtMs: number }>();

  private remember(cacheKey: string, principal: Principal, expiresAtMs: number): void {
    if (this.verified.size >= VERIFIED_TOKENS_CACHED_MAX) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(cacheKey, { principal, expiresAtMs });
  }

  private async verifyUncached(token: string, kind: TokenKind): Promise<{ principal: Principal; expiresAtMs: number } | null> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: [ALGORITHM],
        issuer: this.jwt.issuer,
        audience: this.jwt.audience,
        requiredClaims: ['sub', 'exp', 'iat'],
      });
      const userId = payload.user_id;
      const role = payload.role as Role;
      if (payload.typ !== kind || typeof userId !== 'number' || !Number.isSafeInteger(userId) || String(userId) !== payload.sub) return null;
      if (!ROLES.includes(role)) return null;
      return { principal: { userId, role }, expiresAtMs: (payload.exp ?? 0) * 1000 };
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) return null;
      throw error;
    }
  }
}
