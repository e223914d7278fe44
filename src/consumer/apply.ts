/**
 * Applies a batch in its own transaction, retrying what a retry can fix. Shared by the
 * consumer and the replay tool, so a replay goes through exactly the same idempotent path.
 */
import type pg from 'pg';
import type { Config } from '../config.ts';
import { isTransientDbError, PG_ERROR, pgErrorCode } from '../db/errors.ts';
import { inTransaction } from '../db/pool.ts';
import { accountsOfBatch, applyBatch, type BatchItem, type BatchResult } from '../ledger/apply-batch.ts';
import { EXTERNAL_ACCOUNT, isBoundedAccount, type AccountKey } from '../ledger/core.ts';
import { createMissingAccounts } from '../ledger/store.ts';
import type { Logger } from '../log.ts';
import { withRetry } from '../retry.ts';

export function applyWithRetry(
  pool: pg.Pool,
  items: readonly BatchItem[],
  options: { consumer: Config['consumer']; log: Logger; onRetry?: () => void },
): Promise<BatchResult> {
  const shared = sharedAccountsOf(items);
  return withRetry(async () => {
    if (shared.length > 0) await createMissingAccounts(pool, shared);
    return inTransaction(pool, (db) => applyBatch(db, items));
  }, {
    retriesMax: options.consumer.applyRetriesMax,
    backoffMs: options.consumer.applyRetryBackoffMs,
    // A unique violation on `commands` means another consumer applied one of these commands
    // concurrently (a rebalance); on retry it is found and answered as a duplicate.
    isTransient: (error) => isTransientDbError(error) || pgErrorCode(error) === PG_ERROR.UNIQUE_VIOLATION,
    onRetry: (error, attempt, waitMs) => {
      options.onRetry?.();
      options.log.warn({ err: error, attempt, waitMs, commands: items.length }, 'retrying a batch after a transient database error');
    },
  });
}

/**
 * Accounts other partitions may create at the same time: recipients' incoming and services'
 * revenue accounts (a user's own accounts are only ever created from that user's partition,
 * and the external account exists from the start). See `createMissingAccounts`.
 */
function sharedAccountsOf(items: readonly BatchItem[]): AccountKey[] {
  return [...new Set(accountsOfBatch(items))].filter((key) => !isBoundedAccount(key) && key !== EXTERNAL_ACCOUNT);
}
