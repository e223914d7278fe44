/**
 * What the consumer exports for operators, registered on whichever process runs it (the
 * consumer's own HTTP port, or the gateway's in `npm start`), and its readiness check.
 */
import type { CheckResult } from '../health.ts';
import type { Metrics } from '../metrics.ts';
import type { WorkerStats } from './worker-context.ts';

export function registerConsumerMetrics(metrics: Metrics, stats: WorkerStats): void {
  metrics.register(
    'balance_consumer_commands_total',
    'Commands decided by the consumer, by outcome.',
    'counter',
    () => [
      { labels: { outcome: 'applied' }, value: stats.applied },
      { labels: { outcome: 'settled' }, value: stats.settled },
      { labels: { outcome: 'rejected' }, value: stats.rejected },
      { labels: { outcome: 'duplicate' }, value: stats.duplicates },
      { labels: { outcome: 'dead_lettered' }, value: stats.deadLettered },
    ],
  );
  metrics.register(
    'balance_consumer_unprocessable_total',
    'Valid commands the database refused, recorded as rejected `unprocessable`.',
    'counter',
    () => [{ value: stats.unprocessable }],
  );
  metrics.register(
    'balance_consumer_unrecorded_total',
    'Commands refused whose rejection could not be recorded either: skipped without a record. Page someone.',
    'counter',
    () => [{ value: stats.unrecorded }],
  );
  metrics.register(
    'balance_consumer_parked_total',
    'Messages skipped because an operator parked their offset.',
    'counter',
    () => [{ value: stats.parked }],
  );
  metrics.register(
    'balance_consumer_forged_total',
    'Internal commands (settles) without a valid proof, or not matching their transfer: dead-lettered.',
    'counter',
    () => [{ value: stats.forged }],
  );
  metrics.register(
    'balance_consumer_chunk_writes_total',
    'Chunk writes, by path: `cached` (decided from the partition cache, one statement) or `sure` (read and locked in a transaction).',
    'counter',
    () => [
      { labels: { path: 'cached' }, value: stats.cachedWrites },
      { labels: { path: 'sure' }, value: stats.sureWrites },
    ],
  );
  metrics.register(
    'balance_consumer_cached_write_statements_total',
    'Statements that wrote cached chunks: chunks of several partitions decided at the same time share one.',
    'counter',
    () => [{ value: stats.cachedWriteStatements }],
  );
  metrics.register(
    'balance_consumer_offset_commits_total',
    'Offset commit requests: one per CONSUMER_COMMIT_INTERVAL_MS with progress, carrying every partition.',
    'counter',
    () => [{ value: stats.offsetCommits }],
  );
  metrics.register(
    'balance_consumer_cache_refusals_total',
    'Cached writes the database refused (a row changed behind the cache, a repeat it did not know); each chunk was decided again the sure way.',
    'counter',
    () => [{ value: stats.cacheRefusals }],
  );
  metrics.register(
    'balance_consumer_cold_users_total',
    'Users read from PostgreSQL because the partition cache did not hold them.',
    'counter',
    () => [{ value: stats.coldUsers }],
  );
  metrics.register(
    'balance_consumer_replies_undeliverable_total',
    'Replies a command asked for on a topic that was missing or refused them.',
    'counter',
    () => [{ value: stats.repliesUndeliverable }],
  );
  metrics.register('balance_consumer_lag', 'Messages behind the high watermark, by partition.', 'gauge', () =>
    [...stats.lag].map(([partition, lag]) => ({ labels: { partition: String(partition) }, value: lag })),
  );
  metrics.register(
    'balance_consumer_oldest_unapplied_age_seconds',
    'Age of the oldest message not yet applied, by partition; keeps growing while a partition is stuck.',
    'gauge',
    () =>
      [...stats.oldestUnappliedAt].map(([partition, at]) => ({
        labels: { partition: String(partition) },
        value: Math.max(0, (Date.now() - at) / 1000),
      })),
  );
  metrics.register(
    'balance_consumer_partition_paused',
    'Partitions paused because a dependency failed past the retries (1 = paused).',
    'gauge',
    () =>
      [...(stats.assigned ?? [])].map((partition) => ({
        labels: { partition: String(partition) },
        value: stats.paused.has(partition) ? 1 : 0,
      })),
  );
  metrics.register('balance_consumer_pauses_total', 'Times a partition was paused.', 'counter', () => [
    { value: stats.pauses },
  ]);
  metrics.register(
    'balance_consumer_group_joins_total',
    'Times the consumer joined its group: one at start, then one per rebalance.',
    'counter',
    () => [{ value: stats.groupJoins }],
  );
  metrics.register(
    'balance_consumer_misrouted_total',
    "Commands found on a partition other than their user's murmur2 partition.",
    'counter',
    () => [{ value: stats.misrouted }],
  );
  metrics.register('balance_consumer_retries_total', 'Retries after a transient database error.', 'counter', () => [
    { value: stats.retries },
  ]);
}

/** Ready once the consumer has joined its group and while no partition is paused. */
export function consumerReadiness(stats: WorkerStats): () => CheckResult {
  return () => {
    if (stats.assigned === null) return { ok: false, latencyMs: 0, error: 'the consumer has not joined its group yet' };
    if (stats.paused.size === 0) return { ok: true, latencyMs: 0 };
    // The reason (an internal error message) is in the log, not here:
    // /readyz answers anyone who asks.
    const paused = [...stats.paused].map(([partition, p]) => `${partition} (since ${new Date(p.since).toISOString()})`);
    return { ok: false, latencyMs: 0, error: `partitions paused: ${paused.join('; ')}` };
  };
}
