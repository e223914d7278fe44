/**
 * Every error the HTTP API can answer with, in one registry: a stable code, its HTTP status and
 * a default message. `docs/errors.md` lists the same codes; a test keeps the two in step.
 */
export interface ErrorSpec {
  readonly status: number;
  readonly message: string;
}

export const API_ERRORS = {
  validation_failed: { status: 400, message: 'The request is not valid; see details for each field.' },
  malformed_json: { status: 400, message: 'The request body is not valid JSON.' },
  invalid_statement: {
    status: 400,
    message:
      'The statement file cannot be reconciled as it is; the message names the line and the column. Nothing was stored.',
  },
  idempotency_key_required: {
    status: 400,
    message:
      'Send an Idempotency-Key header with every request that moves money (a new UUID per operation, the same on its retries), so a retry can never apply it twice. See docs/security.md, "Idempotency keys belong to their caller".',
  },
  unauthorized: { status: 401, message: 'Authentication is required: send a valid Bearer access token.' },
  invalid_credentials: { status: 401, message: 'The username or password is wrong.' },
  forbidden: { status: 403, message: 'This account may not perform this action.' },
  not_found: { status: 404, message: 'Nothing exists at this address.' },
  method_not_allowed: { status: 405, message: 'This method is not allowed here.' },
  conflict: { status: 409, message: 'The ledger rejected the command.' },
  recipient_not_found: {
    status: 409,
    message:
      'The recipient has never held an account here (not registered, no history), so the money could not reach anyone; check the recipient_id. Nothing was sent.',
  },
  rate_unavailable: {
    status: 409,
    message:
      'No exchange rate for this currency is fresh enough to convert with (unknown currency, or its rate is older than FX_RATE_AGE_MAX_S).',
  },
  body_too_large: { status: 413, message: 'The request body is larger than the limit.' },
  unsupported_media_type: { status: 415, message: 'Send the body as application/json.' },
  too_many_requests: { status: 429, message: 'Too many attempts; wait and try again.' },
  rate_limited: {
    status: 429,
    message: 'This account sent more requests than its rate limit allows; retry after the time in Retry-After.',
  },
  bulk_storage_exceeded: {
    status: 429,
    message:
      'This account stored more bulk items this hour than BULK_ITEMS_STORED_PER_HOUR_MAX allows; retry after the time in Retry-After, or send the commands one by one.',
  },
  service_unavailable: {
    status: 503,
    message: 'A dependency is unavailable; retrying with the same Idempotency-Key is safe.',
  },
  internal_error: { status: 500, message: 'An unexpected error occurred.' },
} as const satisfies Record<string, ErrorSpec>;

export type ApiErrorCode = keyof typeof API_ERRORS;

/** An error meant for the client: the handler throws it, the error handler renders it. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number;
  /** The code the client sees: the registry code, or for a 409 the ledger's result code. */
  readonly publicCode: string;
  constructor(
    readonly code: ApiErrorCode,
    message?: string,
    readonly details?: unknown,
    publicCode?: string,
  ) {
    super(message ?? API_ERRORS[code].message);
    this.status = API_ERRORS[code].status;
    this.publicCode = publicCode ?? code;
  }
}

export interface ErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details?: unknown;
}
