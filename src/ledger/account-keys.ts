export type AccountKind = 'user_available' | 'user_reserved' | 'user_incoming' | 'revenue' | 'external';
/** `${kind}:${ownerId}`, the natural key of an account. */
export type AccountKey = `${AccountKind}:${number}`;

export function accountKey(kind: AccountKind, ownerId: number): AccountKey {
  return `${kind}:${ownerId}`;
}
export const EXTERNAL_ACCOUNT = accountKey('external', 0);
export const available = (userId: number) => accountKey('user_available', userId);
export const reserved = (userId: number) => accountKey('user_reserved', userId);
/** Transfers received and not yet settled on the recipient's partition; see sql/0003_incoming.sql. */
export const incoming = (userId: number) => accountKey('user_incoming', userId);
export const revenue = (serviceId: number) => accountKey('revenue', serviceId);

export function parseAccountKey(key: AccountKey): { kind: AccountKind; ownerId: number } {
  const at = key.lastIndexOf(':');
  return { kind: key.slice(0, at) as AccountKind, ownerId: Number(key.slice(at + 1)) };
}

/**
 * Accounts whose balance decisions read and that must never go negative: a user's available
 * and reserved money. They are locked and read before deciding; every other account (incoming,
 * revenue, external) is only changed by a delta at the end of the batch.
 */
export function isBoundedAccount(key: AccountKey): boolean {
  return key.startsWith('user_available:') || key.startsWith('user_reserved:');
}

/**
 * Accounts every partition credits or debits (the external account, the services' revenue):
 * one row per partition, so partitions never queue on one lock (sql/0015_account_stripes.sql).
 * Decisions never read them, so which stripe a posting lands in changes no decision.
 */
export function isStripedAccount(key: AccountKey): boolean {
  return key.startsWith('external:') || key.startsWith('revenue:');
}
