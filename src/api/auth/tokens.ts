/**
 * JWTs with jose: short-lived access tokens and longer refresh tokens, HS256 only. The token
 * kind is a claim (`typ`), so a refresh token is never accepted as an access token or back.
 */
import { jwtVerify, SignJWT, errors as joseErrors } from 'jose';
import type { Config } from '../../config.ts';
import { ROLES, type Role } from '../../users/store.ts';

export interface Principal {
  readonly userId: number;
  readonly role: Role;
}

type TokenKind = 'access' | 'refresh';
const ALGORITHM = 'HS256';

export class TokenService {
  private readonly key: Uint8Array;
  constructor(private readonly jwt: Config['jwt']) {
    this.key = new TextEncoder().encode(jwt.secret);
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
      return { userId, role };
    } catch (error) {
      if (error instanceof joseErrors.JOSEError) return null;
      throw error;
    }
  }
}
