/**
 * `npm run setup`: migrations and topics against the configured PostgreSQL and Kafka, then exit.
 * For deployments where the broker is not started by `npm start` (docker compose, production).
 */
import { runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { prepareInfrastructure } from './infrastructure.ts';

await runCli(async () => {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, name: 'setup' });
  if (!config.kafka.brokers) throw new UsageError('KAFKA_BROKERS must be set for npm run setup');
  await prepareInfrastructure(config, log);
});
