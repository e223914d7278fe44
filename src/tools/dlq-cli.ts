/**
 * npm run dlq -- list [--limit N]
 * npm run dlq -- redrive --id <partition:offset>[,...] [--value '<corrected command JSON>'] | --all
 */
import { runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { brokerSecurity, createKafka } from '../kafka/client.ts';
import { createLogger } from '../log.ts';
import { parseArgs } from '../cli.ts';
import { DEAD_LETTERS_READ_MAX, readDeadLetters, redrive } from './dlq.ts';

const VALUE_CHARS_SHOWN = 120;

await runCli(async () => {
  const args = parseArgs(process.argv.slice(2), { values: ['limit', 'id', 'value'], flags: ['all'] });
  const [action] = args.positional;
  const config = loadConfig(process.env, { secrets: 'unused' });
  if (!config.kafka.brokers) throw new UsageError('KAFKA_BROKERS must be set');
  const kafka = createKafka({
    brokers: config.kafka.brokers,
    clientId: 'balance-dlq',
    log: createLogger({ level: 'warn', name: 'dlq' }),
    ...brokerSecurity(config.kafka),
  });
  if (action === 'list') {
    const limit = Number(args.values.get('limit') ?? 100);
    if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive whole number');
    for (const letter of await readDeadLetters(kafka, config.topics.deadLetters, limit)) {
      const h = letter.headers;
      const value = (letter.value?.toString('utf8') ?? '').slice(0, VALUE_CHARS_SHOWN);
      console.log(
        `${letter.id}\t${h['x-error-code'] ?? '?'}\tfrom ${h['x-source-topic']}/${h['x-source-partition']}/${h['x-source-offset']}\tkey=${letter.key}\t${h['x-error-message'] ?? ''}\t${value}`,
      );
    }
    return;
  }
  if (action !== 'redrive' || (!args.values.has('id') && !args.flags.has('all'))) {
    throw new UsageError(
      "usage: npm run dlq -- list [--limit N] | redrive --id <partition:offset>[,...] [--value '<json>'] | redrive --all",
    );
  }
  const all = await readDeadLetters(kafka, config.topics.deadLetters, DEAD_LETTERS_READ_MAX);
  const ids = args.flags.has('all') ? null : new Set(args.values.get('id')!.split(','));
  const chosen = ids ? all.filter((letter) => ids.has(letter.id)) : all;
  const missing = ids ? [...ids].filter((id) => !chosen.some((letter) => letter.id === id)) : [];
  if (missing.length > 0) throw new UsageError(`no dead letter ${missing.join(', ')}`);
  const sent = await redrive(kafka, config.topics.commands, chosen, args.values.get('value'));
  console.log(`re-drove ${sent} message(s) to ${config.topics.commands}`);
});
