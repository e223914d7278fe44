/**
 * What came of the messages a chunk, a worker, a replay or a run went through: one shape for all
 * of them, added with one function. A chunk's pipeline counts each message once; everything
 * above only adds chunks up.
 */
export interface Counts {
  applied: number;
  /** Transfers completed on their recipient's partition (not counted in `applied`). */
  settled: number;
  rejected: number;
  duplicates: number;
  deadLettered: number;
  /** Rejected as `unprocessable`: the database refused the command (also in `rejected`). */
  unprocessable: number;
  /** Refused, and even the rejection could not be recorded: skipped, dead-lettered, alerted. */
  unrecorded: number;
  parked: number;
  /** Internal commands without a valid proof, or not matching their transfer. */
  forged: number;
  misrouted: number;
  /** Chunks written from the partition's cache in one statement (cached-apply.ts). */
  cachedWrites: number;
  /** Chunks (or parts of one) written the sure way: loaded and locked in a transaction. */
  sureWrites: number;
  /** Cached writes the database refused (a row changed behind the cache, an unknown repeat). */
  cacheRefusals: number;
  /** Users read from the database because the cache did not hold them. */
  coldUsers: number;
}

export function emptyCounts(): Counts {
  return {
    applied: 0,
    settled: 0,
    rejected: 0,
    duplicates: 0,
    deadLettered: 0,
    unprocessable: 0,
    unrecorded: 0,
    parked: 0,
    forged: 0,
    misrouted: 0,
    cachedWrites: 0,
    sureWrites: 0,
    cacheRefusals: 0,
    coldUsers: 0,
  };
}

const COUNT_KEYS = Object.keys(emptyCounts()) as Array<keyof Counts>;

/** Adds the counts of `more` to those of `into` (which may carry other fields too). */
export function addCounts(into: Counts, more: Readonly<Counts>): void {
  for (const key of COUNT_KEYS) into[key] += more[key];
}
