/**
 * npm run replay -- [--from earliest|<ISO time>|<partition:offset,...>] [--to latest|<ISO time>]
 *                   [--group <name>] [--dry-run] [--into <database url>]
 */
import { runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { ensureDatabase, redactUrl } from '../db/database.ts';
import { resolveDatabaseUrl } from '../stack/database-url.ts';
import { migrate } from '../db/migrate.ts';
import { createPool } from '../db/pool.ts';
import { brokerSecurity, createKafka } from '../kafka/client.ts';
import { createLogger } from '../log.ts';
import { parseArgs } from '../cli.ts';
import { parseFrom, parseTo, replay, type ReplayProgress } from './replay.ts';

/** How often progress is logged when the output is not a terminal. */
const PROGRESS_LOG_MS = 5_000;

await runCli(async () => {
  const args = parseArgs(process.argv.slice(2), { values: ['from', 'to', 'group', 'into'], flags: ['dry-run'] });
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, name: 'replay' });
  if (!config.kafka.brokers)
    throw new UsageError('KAFKA_BROKERS must be set (the broker that holds the command topic)');
  const into = args.values.get('into');
  const url = into ?? (await resolveDatabaseUrl(config.db));
  if (into) await ensureDatabase(into);
  const pool = createPool(url, config.db, 'balance-replay');
  try {
    await migrate(pool);
    const dryRun = args.flags.has('dry-run');
    const group = args.values.get('group') ?? `balance-replay-${dryRun ? 'dry-' : ''}${Date.now()}`;
    console.error(
      `replaying ${config.topics.commands} into ${redactUrl(url)} as group ${group}${dryRun ? ' (dry run: nothing is written)' : ''}`,
    );
    const report = await replay({
      kafka: createKafka({
        brokers: config.kafka.brokers,
        clientId: 'balance-replay',
        log,
        ...brokerSecurity(config.kafka),
      }),
      pool,
      config,
      log,
      from: parseFrom(args.values.get('from') ?? 'earliest'),
      to: parseTo(args.values.get('to') ?? 'latest'),
      group,
      dryRun,
      onProgress: progressReporter(),
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    console.log(JSON.stringify({ ...report, seconds: report.elapsedMs / 1000 }, null, 2));
  } finally {
    await pool.end();
  }
});

/** A progress bar with rate and ETA on a terminal; a log line every few seconds otherwise. */
function progressReporter(): (p: ReplayProgress) => void {
  let lastLog = 0;
  return (p) => {
    const rate = p.elapsedMs > 0 ? (p.processed / p.elapsedMs) * 1000 : 0;
    const etaS = rate > 0 ? Math.max(0, (p.total - p.processed) / rate) : 0;
    const summary = `${p.processed}/${p.total} messages, ${Math.round(rate)}/s, ETA ${etaS.toFixed(0)} s; applied ${p.applied}, settled ${p.settled}, duplicate ${p.duplicates}, rejected ${p.rejected}, dead-lettered ${p.deadLettered}`;
    if (process.stderr.isTTY) {
      const width = 30;
      const filled = p.total > 0 ? Math.round((p.processed / p.total) * width) : width;
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${summary}`);
    } else if (Date.now() - lastLog >= PROGRESS_LOG_MS) {
      lastLog = Date.now();
      console.error(summary);
    }
  };
}
