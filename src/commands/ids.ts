/**
 * Every id the command contract knows, built from one character class: producers' ids, HTTP
 * callers' Idempotency-Keys, the gateway's scoped ids, and the service's derived ids (settles,
 * expires). A pattern written out twice would drift (an OpenAPI bound said 128 where the code
 * enforced 100); everything that validates or documents an id takes it from here.
 */

/** The characters of every id a client chooses. */
const ID_CHARS = 'A-Za-z0-9._:-';
/** The longest id a Kafka producer may use, and the longest Idempotency-Key over HTTP. */
export const CLIENT_ID_CHARS_MAX = 128;
export const HTTP_KEY_CHARS_MAX = 100;
/** The digits of a user id (at most 2^53 - 1). */
const USER_ID = '[0-9]{1,16}';

const clientId = `[${ID_CHARS}]{1,${CLIENT_ID_CHARS_MAX}}`;
const httpKey = `[${ID_CHARS}]{1,${HTTP_KEY_CHARS_MAX}}`;
const scopedId = `~http:${USER_ID}:${httpKey}`;
const anyCommandId = `(?:${clientId}|${scopedId})`;

const whole = (source: string) => new RegExp(`^${source}$`);

/** What a Kafka producer may use as a command id. */
export const CLIENT_ID_PATTERN = whole(clientId);
/** An Idempotency-Key sent over HTTP. */
export const HTTP_KEY_PATTERN = whole(httpKey);
/**
 * The id the gateway gives a command sent over HTTP: the caller's user id and their key, so two
 * callers' keys never meet. `~` is outside client ids, so no producer collides by accident.
 */
export const HTTP_SCOPED_ID_PATTERN = whole(scopedId);
/** The id of any command a client sends, on Kafka or (scoped) over HTTP. */
export const COMMAND_ID_PATTERN = whole(anyCommandId);
/** What names an alert over HTTP: the caller's own key, or an alert id as listed (scoped). */
export const ALERT_REFERENCE_PATTERN = whole(`(?:${httpKey}|${scopedId})`);
/** A principal as the gateway attests it: `user:<id>`, `service:<id>`, `admin:<id>`. */
export const PRINCIPAL_PATTERN = whole(`(?:user|service|admin):${USER_ID}`);

/**
 * A settle is published by the consumer, never by clients: it completes a transfer on the
 * recipient's partition. Its id is derived from the transfer's, with a '~' no client id can hold:
 * `~settle:<transfer id>` for a transfer to one `recipient_id`, `~settle:<transfer id>#<recipient
 * id>` for each leg of a split payment (`recipients`), whose recipients are distinct.
 */
export const SETTLE_ID_PREFIX = '~settle:';
export const SETTLE_ID_PATTERN = whole(`~settle:${anyCommandId}(?:#[1-9][0-9]{0,15})?`);
/**
 * An expire is published by the consumer's hold-expiry sweeper, never by clients: it returns an
 * expired hold to the user. Its id is derived from the reserve command's, so every copy of it
 * (two sweeps, two consumers) is one command.
 */
export const EXPIRE_ID_PREFIX = '~expire:';
export const EXPIRE_ID_PATTERN = whole(`~expire:${anyCommandId}`);

export function settleIdOf(transferId: string, legRecipientId?: number): string {
  return legRecipientId === undefined
    ? `${SETTLE_ID_PREFIX}${transferId}`
    : `${SETTLE_ID_PREFIX}${transferId}#${legRecipientId}`;
}

/** The transfer a settle completes, and the recipient of its leg when it is a split payment's. */
export function settleSourceOf(settleId: string): { transferId: string; legRecipientId: number | null } {
  const rest = settleId.slice(SETTLE_ID_PREFIX.length);
  const hash = rest.lastIndexOf('#');
  return hash < 0
    ? { transferId: rest, legRecipientId: null }
    : { transferId: rest.slice(0, hash), legRecipientId: Number(rest.slice(hash + 1)) };
}

export function expireIdOf(reserveCommandId: string): string {
  return `${EXPIRE_ID_PREFIX}${reserveCommandId}`;
}

export function httpScopedId(userId: number, key: string): string {
  return `~http:${userId}:${key}`;
}

/** The user an HTTP-scoped id belongs to, and the key it carries; null for any other id. */
export function parseHttpScopedId(id: string): { userId: number; key: string } | null {
  if (!HTTP_SCOPED_ID_PATTERN.test(id)) return null;
  const [, userId, ...key] = id.split(':');
  return { userId: Number(userId), key: key.join(':') };
}
