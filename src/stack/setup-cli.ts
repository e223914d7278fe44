/**
 * `npm run setup [-- --fix]`: migrations and topics against the configured PostgreSQL and Kafka,
 * then a report of topics whose settings differ from the configuration (retention, min ISR,
 * partitions, replication); `--fix` alters the settings that can be altered. Exits 1 while
 * anything differs. For deployments where the broker is not started by `npm start`.
 */
import { runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { parseArgs } from '../cli.ts';
import { checkTopicSettings, prepareInfrastructure } from './infrastructure.ts';

await runCli(async () => {
  const args = parseArgs(process.argv.slice(2), { values: [], flags: ['fix'] });
  const config = loadConfig(process.env, { secrets: 'unused' });
  const log = createLogger({ level: config.logLevel, name: 'setup' });
  if (!config.kafka.brokers) throw new UsageError('KAFKA_BROKERS must be set for npm run setup');
  await prepareInfrastructure(config, log);
  const fix = args.flags.has('fix');
  const drift = await checkTopicSettings(config, config.kafka.brokers, log, fix);
  for (const d of drift)
    console.log(
      `${d.topic}: ${d.setting} is ${d.actual}, configured ${d.expected}${fix && !['partitions', 'replication factor'].includes(d.setting) ? ' (fixed)' : ''}`,
    );
  const left = fix ? drift.filter((d) => ['partitions', 'replication factor'].includes(d.setting)) : drift;
  if (left.length > 0) {
    process.exitCode = 1;
    if (!fix) console.log('run npm run setup -- --fix to apply the configured settings');
  } else console.log('topics match the configuration');
});
