/**
 * The current state of each user a token names: token version, role, services, actions, disabled. Read
 * from the database and cached for at most TOKEN_STATE_CACHE_MS, so a revocation (disable, role
 * change, logout) takes effect within that bound while a busy gateway reads each user at most
 * once per window. The cache is bounded in entries.
 */
import type pg from 'pg';
import { findUserById, type Role } from '../../users/store.ts';

export interface TokenState {
  readonly role: Role;
  readonly version: number;
  readonly disabled: boolean;
  readonly services: readonly number[] | null;
  readonly actions: readonly string[] | null;
}

export const TOKEN_STATES_CACHED_MAX = 50_000;

export class TokenStates {
  private readonly cached = new Map<number, { state: TokenState | null; at: number }>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly cacheMs: number,
  ) {}

  /** The user's state, or null when the user no longer exists. */
  async get(userId: number, now = Date.now()): Promise<TokenState | null> {
    const hit = this.cached.get(userId);
    if (hit && now - hit.at < this.cacheMs) return hit.state;
    const user = await findUserById(this.pool, userId);
    const state = user
      ? {
          role: user.role,
          version: user.tokenVersion,
          disabled: user.disabled,
          services: user.services,
          actions: user.actions,
        }
      : null;
    this.cached.delete(userId);
    if (this.cached.size >= TOKEN_STATES_CACHED_MAX) this.cached.delete(this.cached.keys().next().value!);
    if (this.cacheMs > 0) this.cached.set(userId, { state, at: now });
    return state;
  }
}
