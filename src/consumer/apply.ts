/**
 * The consumer's retry policy around the ledger's writes: what a retry can fix (a lost
 * connection, a deadlock, a concurrent consumer deciding the same command) is retried with
 * bounded exponential backoff; anything else is thrown for the pipeline to classify.
 */
import type pg from 'pg';
import type { Config } from '../config.ts';
import { PG_ERROR, pgErrorCode } from '../db/errors.ts';
import { failureKind } from '../failures.ts';
import { applyCommands, type BatchItem, type BatchResult } from '../ledger/apply-batch.ts';
import { ChunkRefusedError, type Fence } from '../ledger/store/index.ts';
import type { DecisionLimits } from '../commands/limits-record.ts';
import { ledgerLimitsOf } from '../ledger/core.ts';
import type { Logger } from '../log.ts';
import { withRetry } from '../retry.ts';

export interface ApplyOptions {
  readonly consumer: Config['consumer'];
  /** The limits to decide with: the ones the partition's log recorded (limits-record.ts). */
  readonly limits: DecisionLimits;
  readonly log: Logger;
  readonly onRetry?: () => void;
}

export function applyWithRetry(
  pool: pg.Pool,
  items: readonly BatchItem[],
  options: ApplyOptions,
  fence: Fence | null = null,
): Promise<BatchResult> {
  return retrying(
    async () => (await applyCommands(pool, items, ledgerLimitsOf(options.limits), fence)).result,
    items.length,
    options,
  );
}

/** Runs `work` under the consumer's retry policy. */
export function retrying<T>(work: () => Promise<T>, commands: number, options: ApplyOptions): Promise<T> {
  return withRetry(work, {
    retriesMax: options.consumer.applyRetriesMax,
    backoffMs: options.consumer.applyRetryBackoffMs,
    // A unique violation on `commands` means another consumer applied one of these commands
    // concurrently (a rebalance); on retry it is found and answered as a duplicate.
    // A lost partition is not retried: another consumer owns it now.
    isTransient: (error) =>
      !isPartitionLost(error) &&
      (failureKind(error) === 'transient' || pgErrorCode(error) === PG_ERROR.UNIQUE_VIOLATION),
    onRetry: (error, attempt, waitMs) => {
      options.onRetry?.();
      options.log.warn({ err: error, attempt, waitMs, commands }, 'retrying after a transient database error');
    },
  });
}

/** Whether a write was refused because another consumer claimed the partition. */
export function isPartitionLost(error: unknown): boolean {
  return error instanceof ChunkRefusedError && error.reason === 'partition_lost';
}
