/**
 * Counts failed logins per key (a username, an address) in a sliding window and refuses more
 * than `failuresMax` of them. The table of keys is bounded: when full, the oldest key goes.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly failuresMax: number,
    private readonly windowMs: number,
    private readonly keysMax: number = 100_000,
  ) {}

  /** Milliseconds until `key` may try again, or 0 if it may try now. */
  retryAfterMs(key: string, now = Date.now()): number {
    const recent = this.recent(key, now);
    if (recent.length < this.failuresMax) return 0;
    return recent[0]! + this.windowMs - now;
  }

  recordFailure(key: string, now = Date.now()): void {
    const recent = this.recent(key, now);
    recent.push(now);
    this.failures.delete(key);
    if (this.failures.size >= this.keysMax) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(key, recent.slice(-this.failuresMax));
  }

  reset(key: string): void {
    this.failures.delete(key);
  }

  private recent(key: string, now: number): number[] {
    return (this.failures.get(key) ?? []).filter((at) => now - at < this.windowMs);
  }
}
