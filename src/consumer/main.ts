/**
 * The consumer process: `npm run start:consumer`. Needs KAFKA_BROKERS (or starts nothing:
 * use `npm start` for the all-in-one local stack) and applies commands until SIGTERM. Serves
 * /healthz, /readyz and /metrics on CONSUMER_HTTP_PORT.
 */
import { loadConfig } from '../config.ts';
import { runCli } from '../cli.ts';

import { resolveDatabaseUrl } from '../stack/database-url.ts';
import { createPool } from '../db/pool.ts';
import { brokerSecurity, createKafka } from '../kafka/client.ts';
import { createLogger } from '../log.ts';
import { onShutdownSignal } from '../signals.ts';
import { buildConsumerApp } from './http.ts';
import { createCommandWorker } from './worker.ts';

await runCli(async () => {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, name: 'consumer' });
  if (!config.kafka.brokers)
    throw new Error('KAFKA_BROKERS must be set for a stand-alone consumer (npm start runs a local broker)');
  const pool = createPool(await resolveDatabaseUrl(config.db), config.db, 'balance-consumer');
  const kafka = createKafka({
    brokers: config.kafka.brokers,
    clientId: `${config.kafka.clientId}-consumer`,
    log,
    ...brokerSecurity(config.kafka),
  });
  const worker = createCommandWorker({ config, kafka, pool, log });
  const app = buildConsumerApp({ pool, kafka, stats: worker.stats, signingKey: worker.signingKey, log });
  const address = await app.listen({ host: config.http.host, port: config.http.consumerPort });
  log.info({ address }, 'consumer operations port: /healthz, /readyz, /metrics');
  await worker.start();
  await new Promise<void>((resolve) => onShutdownSignal(log, resolve));
  await worker.stop();
  await app.close();
  await pool.end();
});
