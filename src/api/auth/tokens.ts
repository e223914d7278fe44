/**
 * JWTs with jose: short-lived access tokens and rotating refresh tokens, HS256 only. The token
 * kind is a claim (`typ`), so a refresh token is never accepted as an access token or back.
 * Every token carries the user's token version (`ver`) and an id (`jti`); a refresh token also
 * its family (`fam`). Whether the version is still current is checked per request, against
 * the database through a short cache (token-states.ts): that is what makes tokens revocable.
 */
import { createSecretKey, randomUUID, type KeyObject } from 'node:crypto';
import { jwtVerify, SignJWT, errors as joseErrors } from 'jose';
import type { Config } from '../../config.ts';
import { ROLES, type Role } from '../../users/store.ts';

export interface TokenClaims {
  readonly userId: number;
  readonly role: Role;
  readonly version: number;
  readonly jti: string;
  /** Refresh tokens only: the rotation family. */
  readonly family: string | null;
  readonly expiresAtMs: number;
}

type TokenKind = 'access' | 'refresh';
const ALGORITHM = 'HS256';
/** Tokens already verified, kept until they expire: jose's HMAC check costs about 250 µs. */
export const VERIFIED_TOKENS_CACHED_MAX = 10_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class TokenService {
  // A KeyObject, not raw bytes: jose would import raw bytes into a new key on every call,
  // which made verifying a token cost about 300 µs.
  private readonly key: KeyObject;
  private readonly verified = new Map<string, TokenClaims>();

  constructor(private readonly jwt: Config['jwt']) {
    this.key = createSecretKey(Buffer.from(jwt.secret, 'utf8'));
  }

  async issueAccess(subject: { userId: number; role: Role; version: number }): Promise<string> {
    return this.sign(
      { user_id: subject.userId, role: subject.role, ver: subject.version, typ: 'access' },
      randomUUID(),
      this.jwt.accessTtlS,
    );
  }

  /** A refresh token of `family` (a new family at login); returns it with its id and expiry, to store. */
  async issueRefresh(
    subject: { userId: number; role: Role; version: number },
    family: string,
  ): Promise<{ token: string; jti: string; expiresAt: Date }> {
    const jti = randomUUID();
    const token = await this.sign(
      { user_id: subject.userId, role: subject.role, ver: subject.version, typ: 'refresh', fam: family },
      jti,
      this.jwt.refreshTtlS,
    );
    return { token, jti, expiresAt: new Date(Date.now() + this.jwt.refreshTtlS * 1_000) };
  }

  private sign(claims: Record<string, unknown>, jti: string, ttlS: number): Promise<string> {
    return new SignJWT(claims)
      .setProtectedHeader({ alg: ALGORITHM, typ: 'JWT' })
      .setSubject(String(claims.user_id))
      .setJti(jti)
      .setIssuer(this.jwt.issuer)
      .setAudience(this.jwt.audience)
      .setIssuedAt()
      .setExpirationTime(`${ttlS}s`)
      .sign(this.key);
  }

  /** The claims of a valid, unexpired token of `kind`, or null for anything else. */
  async verify(token: string, kind: TokenKind): Promise<TokenClaims | null> {
    const cacheKey = `${kind}:${token}`;
    const cached = this.verified.get(cacheKey);
    if (cached && cached.expiresAtMs > Date.now()) return cached;
    if (cached) this.verified.delete(cacheKey);
    const claims = await this.verifyUncached(token, kind);
    // Refresh tokens are used once; caching them would only keep them in memory longer.
    if (claims && kind === 'access') this.remember(cacheKey, claims);
    return claims;
  }

  private remember(cacheKey: string, claims: TokenClaims): void {
    if (this.verified.size >= VERIFIED_TOKENS_CACHED_MAX) this.verified.delete(this.verified.keys().next().value!);
    this.verified.set(cacheKey, claims);
  }

  private async verifyUncached(token: string, kind: TokenKind): Promise<TokenClaims | null> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        algorithms: [ALGORITHM],
        issuer: this.jwt.issuer,
        audience: this.jwt.audience,
        requiredClaims: ['sub', 'exp', 'iat', 'jti'],
      });
      const { user_id: userId, role, ver: version, jti, fam: family } = payload as Record<string, unknown>;
      if (
        payload.typ !== kind ||
        typeof userId !== 'number' ||
        !Number.isSafeInteger(userId) ||
        String(userId) !== payload.sub
      )
        return null;
      if (
        !ROLES.includes(role as Role) ||
        typeof version !== 'number' ||
        !Number.isSafeInteger(version) ||
        typeof jti !== 'string' ||
        !UUID.test(jti)
      )
        return null;
      if (kind === 'refresh' && (typeof family !== 'string' || !UUID.test(family))) return null;
      return {
        userId,
        role: role as Role,
        version,
        jti,
        family: kind === 'refresh' ? (family as string) : null,
        expiresAtMs: (payload.exp ?? 0) * 1000,
      };
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) return null;
      throw error;
    }
  }
}
