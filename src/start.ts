/**
 * `npm start`: the whole service on one machine. Starts (or connects to) Kafka and PostgreSQL,
 * migrates, creates the topics, then runs the consumer and the gateway in this process until
 * Ctrl-C or SIGTERM, and stops all of it, the local broker included.
 */
import { buildGateway } from './api/gateway.ts';
import { runCli } from './cli.ts';
import { loadConfig } from './config.ts';
import { consumerReadiness, registerConsumerMetrics } from './consumer/metrics.ts';
import { createCommandWorker } from './consumer/worker.ts';
import { createPool } from './db/pool.ts';
import { brokerSecurity, createKafka } from './kafka/client.ts';
import { createLogger } from './log.ts';
import { prepareInfrastructure } from './stack/infrastructure.ts';
import { onShutdownSignal } from './signals.ts';

/**
 * `npm start` is the local stack, so it may run on the public development secrets; it says so.
 * Outside production, and unless the operator decided otherwise, it sets ALLOW_DEV_SECRETS for
 * itself (only for this process). Returns the secrets left to their built-in values.
 */
function allowDevSecretsLocally(): string[] {
  const unset = ['JWT_SECRET', 'INTERNAL_COMMAND_SECRET', 'ANCHOR_SIGNING_KEY'].filter((name) => !process.env[name]);
  if (unset.length > 0 && process.env.NODE_ENV !== 'production' && process.env.ALLOW_DEV_SECRETS === undefined)
    process.env.ALLOW_DEV_SECRETS = 'true';
  return process.env.ALLOW_DEV_SECRETS === 'true' ? unset : [];
}

await runCli(async () => {
  const devSecrets = allowDevSecretsLocally();
  const config = loadConfig();
  const log = createLogger({ level: config.logLevel });
  if (devSecrets.length > 0)
    log.warn(
      { secrets: devSecrets },
      'npm start uses the built-in development secrets for these (ALLOW_DEV_SECRETS); set them for anything but local use',
    );
  const infra = await prepareInfrastructure(config, log);
  const pool = createPool(infra.databaseUrl, config.db, 'balance-service');
  const kafka = createKafka({
    brokers: infra.brokers,
    clientId: config.kafka.clientId,
    log,
    ...brokerSecurity(config.kafka),
  });
  const worker = createCommandWorker({ config, kafka, pool, log: log.child({ component: 'consumer' }) });
  const gateway = buildGateway({
    config,
    kafka,
    pool,
    log: log.child({ component: 'gateway' }),
    colocated: {
      registerMetrics: (metrics) => registerConsumerMetrics(metrics, worker.stats),
      readiness: consumerReadiness(worker.stats),
    },
  });
  // What must not outlive this process, signalled (not waited for) on any way out: a forced
  // exit (a second Ctrl-C) or a crash. A normal stop stops them in order, below.
  const signalChildrenToStop = () => {
    infra.localKafka?.signalStop();
    infra.localPostgres?.signalStop();
  };
  process.once('exit', signalChildrenToStop);
  let stopping = false;
  let brokerLost = false;
  const stopped = new Promise<void>((resolve) => {
    onShutdownSignal(log, resolve, signalChildrenToStop);
    // Its own broker gone, nothing brings one back: stop everything and say why, rather than
    // wait for a broker that will never answer.
    void infra.localKafka?.exited.then((code) => {
      if (stopping) return;
      brokerLost = true;
      log.error(
        { code, log: infra.localKafka?.logFile },
        'the local Kafka broker exited; stopping the service (start it again with npm start)',
      );
      resolve();
    });
  });
  await worker.start();
  const address = await gateway.start({ host: config.http.host, port: config.http.port });
  log.info(
    { gateway: address, kafka: infra.brokers.join(','), commands: config.topics.commands },
    'balance service is running; Ctrl-C stops it',
  );
  await stopped;
  stopping = true;
  await gateway.stop();
  await worker.stop();
  await pool.end();
  await infra.localKafka?.stop();
  await infra.localPostgres?.stop();
  process.off('exit', signalChildrenToStop);
  log.info('stopped');
  if (brokerLost) process.exitCode = 1;
});
