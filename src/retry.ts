/**
 * Bounded retry with exponential backoff and jitter. Whether an error is worth retrying is a
 * property of the error (see isTransientDbError), decided by the caller's predicate, not here.
 */
export interface RetryPolicy {
  readonly retriesMax: number;
  readonly backoffMs: number;
  /** The longest single wait, whatever the attempt number. */
  readonly backoffMsMax?: number;
  readonly isTransient: (error: unknown) => boolean;
  readonly onRetry?: (error: unknown, attempt: number, waitMs: number) => void;
}

export async function withRetry<T>(work: (attempt: number) => Promise<T>, policy: RetryPolicy): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await work(attempt);
    } catch (error) {
      if (attempt >= policy.retriesMax || !policy.isTransient(error)) throw error;
      const waitMs = backoffFor(attempt, policy);
      policy.onRetry?.(error, attempt + 1, waitMs);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}

export function backoffFor(attempt: number, policy: Pick<RetryPolicy, 'backoffMs' | 'backoffMsMax'>): number {
  const ceiling = Math.min(policy.backoffMs * 2 ** attempt, policy.backoffMsMax ?? 5_000);
  // Full jitter: two consumers that collided do not retry in lockstep.
  return Math.max(1, Math.round(ceiling / 2 + (Math.random() * ceiling) / 2));
}
