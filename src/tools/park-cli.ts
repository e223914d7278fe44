/**
 * npm run park -- --partition <p> --offset <o> --reason "<why>" [--by <name>] [--topic <topic>]
 * npm run park -- list [--limit N]
 *
 * Parks one offset of the command topic: the consumer dead-letters that message (code `parked`)
 * instead of applying it, and the database keeps who parked it, when and why. For a message the
 * consumer cannot get past by itself (a bug in this service); see docs/operations.md.
 */
import { userInfo } from 'node:os';
import { runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { park, listParked } from '../consumer/parking.ts';

import { resolveDatabaseUrl } from '../stack/database-url.ts';
import { createPool } from '../db/pool.ts';
import { brokerSecurity, createKafka } from '../kafka/client.ts';
import { createLogger } from '../log.ts';
import { parseArgs } from '../cli.ts';

const USAGE =
  'usage: npm run park -- --partition <p> --offset <o> --reason "<why>" [--by <name>] [--topic <topic>] | list [--limit N]';
const REASON_CHARS_MAX = 500;

await runCli(async () => {
  const args = parseArgs(process.argv.slice(2), {
    values: ['partition', 'offset', 'reason', 'by', 'topic', 'limit'],
    flags: [],
  });
  const config = loadConfig(process.env, { secrets: 'unused' });
  const pool = createPool(await resolveDatabaseUrl(config.db), config.db, 'balance-park');
  try {
    if (args.positional[0] === 'list') {
      const limit = wholeNumber(args.values.get('limit') ?? '50', '--limit');
      for (const row of await listParked(pool, limit)) {
        const skipped = row.skipped_at ? `skipped ${row.skipped_at.toISOString()}` : 'not reached yet';
        console.log(
          `${row.source_topic}/${row.source_partition}/${row.source_offset}\tby ${row.parked_by} at ${row.parked_at.toISOString()}\t${skipped}\t${row.reason}`,
        );
      }
      return;
    }
    if (
      args.positional.length > 0 ||
      !args.values.has('partition') ||
      !args.values.has('offset') ||
      !args.values.has('reason')
    )
      throw new UsageError(USAGE);
    const target = {
      topic: args.values.get('topic') ?? config.topics.commands,
      partition: wholeNumber(args.values.get('partition')!, '--partition'),
      offset: String(wholeNumber(args.values.get('offset')!, '--offset')),
      reason: args.values.get('reason')!.trim(),
      parkedBy: args.values.get('by') ?? userInfo().username,
    };
    if (target.reason.length === 0 || target.reason.length > REASON_CHARS_MAX)
      throw new UsageError(`--reason must be 1-${REASON_CHARS_MAX} characters`);
    await warnIfAlreadyPast(config, target);
    const parked = await park(pool, target);
    console.log(
      parked
        ? `parked ${target.topic}/${target.partition}/${target.offset} (by ${target.parkedBy}): the consumer will dead-letter it instead of applying it`
        : 'already parked; the first reason stands',
    );
  } finally {
    await pool.end();
  }
});

function wholeNumber(text: string, name: string): number {
  if (!/^[0-9]{1,15}$/.test(text)) throw new UsageError(`${name} must be a whole number`);
  return Number(text);
}

/** An offset the consumer group has already committed past is never read again: parking it does nothing. */
async function warnIfAlreadyPast(
  config: ReturnType<typeof loadConfig>,
  target: { topic: string; partition: number; offset: string },
): Promise<void> {
  if (!config.kafka.brokers) return;
  const kafka = createKafka({
    brokers: config.kafka.brokers,
    clientId: 'balance-park',
    log: createLogger({ level: 'warn', name: 'park' }),
    ...brokerSecurity(config.kafka),
  });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [offsets] = await admin.fetchOffsets({ groupId: config.consumer.group, topics: [target.topic] });
    const committed = offsets?.partitions.find((p) => p.partition === target.partition)?.offset;
    if (committed !== undefined && BigInt(committed) > BigInt(target.offset)) {
      console.warn(
        `warning: ${config.consumer.group} has already committed offset ${committed} on partition ${target.partition}; offset ${target.offset} is past and will not be read again`,
      );
    }
  } finally {
    await admin.disconnect();
  }
}
