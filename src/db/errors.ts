/** PostgreSQL SQLSTATE codes the service reacts to, by name. */
export const PG_ERROR = {
  UNIQUE_VIOLATION: '23505',
  CHECK_VIOLATION: '23514',
  SERIALIZATION_FAILURE: '40001',
  DEADLOCK_DETECTED: '40P01',
  INVALID_CATALOG_NAME: '3D000',
  DUPLICATE_DATABASE: '42P04',
  ADMIN_SHUTDOWN: '57P01',
  CANNOT_CONNECT_NOW: '57P03',
  QUERY_CANCELED: '57014',
  UNTRANSLATABLE_CHARACTER: '22P05',
  CHARACTER_NOT_IN_REPERTOIRE: '22021',
  NUMERIC_VALUE_OUT_OF_RANGE: '22003',
  /**
   * Raised by the ledger's own functions (sql/functions/) when a write would break an invariant
   * the decision relied on (a reservation it closes is no longer open). Not P0001, which any
   * trigger or extension raises by default: this one is ours, and says the command cannot apply.
   */
  LEDGER_INVARIANT: 'LI001',
} as const;

/**
 * SQLSTATE classes that mean "this data can never be stored": retrying the same command fails
 * the same way, so the consumer isolates it instead of retrying (see consumer/pipeline.ts).
 *   22 data exception (a NUL byte, a BIGINT overflow), 23 integrity constraint violation (a
 *   CHECK), 54 program limit exceeded (a row or array too large).
 * Everything else, including unknown errors, is treated as transient: a missing table, a
 * revoked privilege or a full disk is the deployment's problem, and skipping commands because
 * of it would lose them.
 */
const DETERMINISTIC_CLASSES = new Set(['22', '23', '54']);

/** Single codes outside those classes that are as final: the ledger's own invariant breaks. */
const DETERMINISTIC_CODES = new Set<string>([PG_ERROR.LEDGER_INVARIANT]);

/**
 * Whether the database refused these particular values (deterministic) or may accept them on
 * another try. A unique violation on `commands` is the one exception inside class 23: it means
 * another consumer decided the command first (a rebalance), so the caller retries it, and it
 * only counts as deterministic once the retries are spent.
 */
export function isDeterministicDbError(error: unknown): boolean {
  const code = pgErrorCode(error);
  if (code === undefined || !/^[0-9A-Z]{5}$/.test(code)) return false;
  return DETERMINISTIC_CLASSES.has(code.slice(0, 2)) || DETERMINISTIC_CODES.has(code);
}

/** Node socket error codes that mean "no server answers there". */
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'EAI_AGAIN']);

const TRANSIENT_PG_CODES = new Set<string>([
  PG_ERROR.SERIALIZATION_FAILURE,
  PG_ERROR.DEADLOCK_DETECTED,
  PG_ERROR.ADMIN_SHUTDOWN,
  PG_ERROR.CANNOT_CONNECT_NOW,
]);

export function pgErrorCode(error: unknown): string | undefined {
  if (error && typeof error === 'object' && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}

export function isUnreachable(error: unknown): boolean {
  const code = pgErrorCode(error);
  if (code && UNREACHABLE_CODES.has(code)) return true;
  // AggregateError from happy-eyeballs connects carries the socket codes in `errors`.
  if (error instanceof AggregateError) return error.errors.some(isUnreachable);
  return false;
}

/**
 * Whether retrying the same work may succeed: lock conflicts, a server restart, or a dropped
 * connection. Anything else (a constraint violation, a bug) is final.
 */
export function isTransientDbError(error: unknown): boolean {
  const code = pgErrorCode(error);
  if (code && TRANSIENT_PG_CODES.has(code)) return true;
  if (isUnreachable(error)) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection ended|ECONNRESET|Client has encountered a connection error|timeout exceeded when trying to connect|Cannot use a pool after calling end/i.test(
    message,
  );
}
