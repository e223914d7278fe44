/**
 * `npm run kafka:up` starts the local broker in the foreground until Ctrl-C;
 * `npm run kafka:down` stops one left running, through its pid file.
 */
import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { runCli } from '../cli.ts';
import { startLocalKafka, stopLocalKafka } from './local-kafka.ts';
import { onShutdownSignal } from '../signals.ts';

await runCli(async () => {
  const config = loadConfig(process.env, { secrets: 'unused' });
  const log = createLogger({ level: config.logLevel, name: 'kafka' });
  const { dir, port, controllerPort, heapMb } = config.kafka.local;
  if (process.argv[2] === 'down') {
    const stopped = await stopLocalKafka(dir, log);
    log.info(stopped ? 'local Kafka broker stopped' : 'no local Kafka broker was running');
    return;
  }
  const broker = await startLocalKafka({
    dir,
    port,
    controllerPort,
    heapMb,
    readyWaitMs: config.kafka.readyWaitMs,
    log,
  });
  log.info({ brokers: broker.brokers.join(',') }, 'set KAFKA_BROKERS to this to use it from other processes');
  await new Promise<void>((resolve) => onShutdownSignal(log, resolve));
  await broker.stop();
});
