/** The gateway process on its own: `npm run start:gateway`, with KAFKA_BROKERS set. */
import { runCli } from '../cli.ts';
import { loadConfig } from '../config.ts';

import { resolveDatabaseUrl } from '../stack/database-url.ts';
import { createPool } from '../db/pool.ts';
import { brokerSecurity, createKafka } from '../kafka/client.ts';
import { createLogger } from '../log.ts';
import { onShutdownSignal } from '../signals.ts';
import { buildGateway } from './gateway.ts';

await runCli(async () => {
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel, name: 'gateway' });
  if (!config.kafka.brokers)
    throw new Error('KAFKA_BROKERS must be set for a stand-alone gateway (npm start runs a local broker)');
  const pool = createPool(await resolveDatabaseUrl(config.db), config.db, 'balance-gateway');
  const gateway = buildGateway({
    config,
    kafka: createKafka({
      brokers: config.kafka.brokers,
      clientId: `${config.kafka.clientId}-gateway`,
      log,
      ...brokerSecurity(config.kafka),
    }),
    pool,
    log,
  });
  await gateway.start({ host: config.http.host, port: config.http.port });
  await new Promise<void>((resolve) => onShutdownSignal(log, resolve));
  await gateway.stop();
  await pool.end();
});
