/**
 * Refresh tokens rotate: each may be used once, and using it returns the next one of its family.
 * A token presented a second time means two parties hold it (one of them stole it): the whole
 * family is revoked, so the thief's tokens and the owner's stop together.
 */
import type pg from 'pg';

const SQL_INSERT = 'INSERT INTO refresh_tokens (jti, family, user_id, expires_at) VALUES ($1, $2, $3, $4)';
const SQL_USE = `
  UPDATE refresh_tokens SET used_at = now()
  WHERE jti = $1 AND user_id = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
  RETURNING family`;
const SQL_FIND = 'SELECT family FROM refresh_tokens WHERE jti = $1';
const SQL_REVOKE_FAMILY = 'UPDATE refresh_tokens SET revoked_at = now() WHERE family = $1 AND revoked_at IS NULL';
/** Rows of tokens expired a day ago are of no more use, even as evidence of reuse. */
const SQL_PRUNE = "DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'";

export async function storeRefreshToken(
  db: pg.Pool,
  token: { jti: string; family: string; userId: number; expiresAt: Date },
): Promise<void> {
  await db.query(SQL_INSERT, [token.jti, token.family, token.userId, token.expiresAt]);
}

/** 'ok' (now used), 'reused' (its family is now revoked), or 'unknown' (expired, revoked, never issued). */
export async function useRefreshToken(db: pg.Pool, jti: string, userId: number): Promise<'ok' | 'reused' | 'unknown'> {
  if ((await db.query(SQL_USE, [jti, userId])).rowCount === 1) return 'ok';
  const found = await db.query<{ family: string }>(SQL_FIND, [jti]);
  if (!found.rows[0]) return 'unknown';
  await db.query(SQL_REVOKE_FAMILY, [found.rows[0].family]);
  return 'reused';
}

export async function pruneRefreshTokens(db: pg.Pool): Promise<void> {
  await db.query(SQL_PRUNE);
}
