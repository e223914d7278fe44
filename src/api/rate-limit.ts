/**
 * A token bucket per principal for writes (money-moving and alert endpoints): each caller gets
 * RATE_LIMIT_BURST requests at once and RATE_LIMIT_PER_S after that; past it, 429 with
 * Retry-After. Every command is kept on the command topic for good and costs the consumer a
 * decision, so a leaked token or a runaway client must not be able to write without bound.
 * Keyed by the authenticated principal (after the token is verified), so nobody can spend
 * another caller's budget. One gateway's own count: n gateways allow n times the rate.
 *
 * The map is bounded (PRINCIPALS_TRACKED_MAX, least recently seen dropped first); a dropped
 * bucket comes back full, which only ever favours that caller, and only past that many callers.
 */
export const PRINCIPALS_TRACKED_MAX = 100_000;

interface Bucket {
  tokens: number;
  atMs: number;
}

export class PrincipalRateLimit {
  private readonly buckets = new Map<number, Bucket>();

  /** `perS` 0 turns the limit off. */
  constructor(
    private readonly perS: number,
    private readonly burst: number,
  ) {}

  /** Takes one request from `userId`'s bucket: 0 if it may go now, else the ms until it may. */
  take(userId: number, nowMs = Date.now()): number {
    if (this.perS === 0) return 0;
    const bucket = this.buckets.get(userId) ?? { tokens: this.burst, atMs: nowMs };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((nowMs - bucket.atMs) * this.perS) / 1_000);
    bucket.atMs = nowMs;
    // Re-inserted, so the map's order is by last use and the first key is the one to drop.
    this.buckets.delete(userId);
    if (this.buckets.size >= PRINCIPALS_TRACKED_MAX) this.buckets.delete(this.buckets.keys().next().value!);
    this.buckets.set(userId, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) * 1_000) / this.perS);
  }
}
