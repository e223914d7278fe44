/**
 * The consumer process: `npm run start:consumer`. Needs KAFKA_BROKERS (or starts nothing:
 * use `npm start` for the all-in-one local stack) and applies commands until SIGTERM.
 */
import { loadConfig } from '../config.ts';
import { runCli } from '../cli.ts';
import { resolveDatabaseUrl } from '../db/database.ts';
import { createPool } from '../db/pool.ts';
import { createKafka } from '../kafka/client.ts';
import { createLogger } from '../log.ts';
import { onShutdownSignal } from '../stack/signals.ts';
import { createCommandWorker } from './worker.ts';

await runCli(async () => {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, name: 'consumer' });
  if (!config.kafka.brokers) throw new Error('KAFKA_BROKERS must be set for a stand-alone consumer (npm start runs a local broker)');
  const pool = createPool(await resolveDatabaseUrl(config.db), config.db, 'balance-consumer');
  const worker = createCommandWorker({ config, kafka: createKafka({ brokers: config.kafka.brokers, clientId: `${config.kafka.clientId}-consumer`, log }), pool, log });
  await worker.start();
  await new Promise<void>((resolve) => onShutdownSignal(log, resolve));
  await worker.stop();
  await pool.end();
});
