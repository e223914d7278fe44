/**
 * Refresh tokens rotate: each may be used once, and using it returns the next one of its family.
 * A token presented a second time means two parties hold it (one of them stole it): the whole
 * family is revoked, so the thief's tokens and the owner's stop together, and the user's token
 * version moves on, so every access token already issued stops too (within
 * TOKEN_STATE_CACHE_MS): a thief who refreshed first would otherwise keep API access until it
 * expired. The version also closes a race: a refresh that won the token just before the reuse
 * was seen issues its new pair under the old version, so that pair is refused as well.
 */
import type pg from 'pg';

const SQL_INSERT = 'INSERT INTO refresh_tokens (jti, family, user_id, expires_at) VALUES ($1, $2, $3, $4)';
const SQL_USE = `
  UPDATE refresh_tokens SET used_at = now()
  WHERE jti = $1 AND user_id = $2 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()
  RETURNING family`;
// Only a token already used counts as reused: one that merely expired a moment ago (jose's clock
// and PostgreSQL's may differ by a little) or was revoked is just no longer valid.
const SQL_FIND = 'SELECT family FROM refresh_tokens WHERE jti = $1 AND used_at IS NOT NULL';
const SQL_REVOKE_FAMILY = 'UPDATE refresh_tokens SET revoked_at = now() WHERE family = $1 AND revoked_at IS NULL';
const SQL_END_ACCESS_TOKENS = 'UPDATE users SET token_version = token_version + 1 WHERE id = $1';
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
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    await client.query(SQL_REVOKE_FAMILY, [found.rows[0].family]);
    await client.query(SQL_END_ACCESS_TOKENS, [userId]);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
  return 'reused';
}

export async function pruneRefreshTokens(db: pg.Pool): Promise<void> {
  await db.query(SQL_PRUNE);
}
