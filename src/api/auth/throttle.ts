/**
 * Login throttling that cannot be bypassed by racing it, nor turned into a lockout.
 *
 * - The attempt is counted when it starts, before any await (`begin`), so parallel attempts
 *   cannot all pass one check; a successful login clears it again.
 * - Failures slow down the next attempts of the same (username, client address) progressively:
 *   after n failures, the next is allowed `baseDelayMs * 2^(n - freeFailures)` later, capped at
 *   `delayMsMax`. Nobody else is affected, so no one can lock an account for its owner.
 * - An address is also bounded over all usernames (password spraying), more loosely.
 * - An account is also bounded over all addresses, more loosely still: rotating addresses (an
 *   IPv6 block has billions) gives no more guesses against one account than
 *   `accountFreeFailures` plus a delay that doubles. This one can be used to lock an account
 *   for its owner, which is the price of bounding guesses; it says so (429, Retry-After).
 * State is per gateway process, bounded in keys; with G gateways, an attacker gets at most G
 * times the attempts. docs/security.md gives the exact figures.
 *
 * Eviction cannot be used to wipe a lock: a count that delays its key (a locked pair or account)
 * is kept apart from the counts that delay nobody yet, each with its own bound. Junk sign-ins
 * for new usernames only ever push out other junk; to push a locked account's count out, an
 * attacker must first lock `keysMax` other accounts, `accountFreeFailures` failures each.
 */
export interface ThrottleLimits {
  /** Failures of one (username, address) before any delay. */
  readonly freeFailures: number;
  readonly baseDelayMs: number;
  readonly delayMsMax: number;
  /** Attempts of one address, over all usernames, per window. */
  readonly addressAttemptsMax: number;
  readonly addressWindowMs: number;
  /** Failures of one username, over all addresses, before any delay. */
  readonly accountFreeFailures: number;
  readonly keysMax: number;
}

export const DEFAULT_THROTTLE_LIMITS: ThrottleLimits = {
  freeFailures: 3,
  baseDelayMs: 1_000,
  delayMsMax: 5 * 60_000,
  addressAttemptsMax: 100,
  addressWindowMs: 60_000,
  accountFreeFailures: 20,
  keysMax: 100_000,
};

interface Failures {
  count: number;
  lastAt: number;
}

/**
 * Failure counts by key, in two bounded tiers: counts below `lockAt` (they delay nobody yet) and
 * counts at or above it. Each tier drops its least recently failed key when full, so a flood of
 * new keys never pushes out a count that is holding a key back.
 */
export class FailureCounts {
  private readonly below = new Map<string, Failures>();
  private readonly locked = new Map<string, Failures>();

  constructor(
    private readonly lockAt: number,
    private readonly keysMax: number,
  ) {}

  get(key: string): Failures | undefined {
    return this.locked.get(key) ?? this.below.get(key);
  }

  /** Counts one more failure of `key` at `now`. */
  add(key: string, now: number): void {
    const count = (this.get(key)?.count ?? 0) + 1;
    this.clear(key);
    const tier = count >= this.lockAt ? this.locked : this.below;
    if (tier.size >= this.keysMax) tier.delete(tier.keys().next().value!);
    tier.set(key, { count, lastAt: now });
  }

  clear(key: string): void {
    this.below.delete(key);
    this.locked.delete(key);
  }
}

export class LoginThrottle {
  /** By (username, address). */
  private readonly failures: FailureCounts;
  /** By username over all addresses. */
  private readonly accountFailures: FailureCounts;
  private readonly addressAttempts = new Map<string, number[]>();

  constructor(private readonly limits: ThrottleLimits = DEFAULT_THROTTLE_LIMITS) {
    this.failures = new FailureCounts(limits.freeFailures, limits.keysMax);
    this.accountFailures = new FailureCounts(limits.accountFreeFailures, limits.keysMax);
  }

  /**
   * Starts an attempt: 0 if it may go on (it then counts as a failure until `succeeded`), or
   * the milliseconds to wait. Synchronous on purpose: nothing can run between check and count.
   */
  begin(username: string, address: string, now = Date.now()): number {
    const key = pairKey(username, address);
    const wait = Math.max(
      this.waitMs(this.failures, key, this.limits.freeFailures, now),
      this.addressWaitMs(address, now),
      this.accountWaitMs(username, now),
    );
    if (wait > 0) return wait;
    this.failures.add(key, now);
    this.accountFailures.add(username, now);
    const attempts = this.recentAttempts(address, now);
    attempts.push(now);
    this.addressAttempts.set(address, attempts);
    return 0;
  }

  succeeded(username: string, address: string): void {
    this.failures.clear(pairKey(username, address));
    this.accountFailures.clear(username);
  }

  /** How long the account stays locked after failures from every address (0: it is not). */
  accountWaitMs(username: string, now = Date.now()): number {
    return this.waitMs(this.accountFailures, username, this.limits.accountFreeFailures, now);
  }

  private waitMs(counts: FailureCounts, key: string, freeFailures: number, now: number): number {
    const failures = counts.get(key);
    if (!failures || failures.count < freeFailures) return 0;
    const delay = Math.min(this.limits.baseDelayMs * 2 ** (failures.count - freeFailures), this.limits.delayMsMax);
    return Math.max(0, failures.lastAt + delay - now);
  }

  private addressWaitMs(address: string, now: number): number {
    const attempts = this.recentAttempts(address, now);
    if (attempts.length < this.limits.addressAttemptsMax) return 0;
    return attempts[0]! + this.limits.addressWindowMs - now;
  }

  private recentAttempts(address: string, now: number): number[] {
    const kept = (this.addressAttempts.get(address) ?? []).filter((at) => now - at < this.limits.addressWindowMs);
    if (this.addressAttempts.size >= this.limits.keysMax && !this.addressAttempts.has(address))
      this.addressAttempts.delete(this.addressAttempts.keys().next().value!);
    return kept.slice(-this.limits.addressAttemptsMax);
  }
}

function pairKey(username: string, address: string): string {
  return `${address}\u0000${username}`;
}
