/**
 * `npm run kafka:up` starts the local broker in the foreground until Ctrl-C;
 * `npm run kafka:down` stops one left running, through its pid file;
 * `npm run kafka:tools -- <tool> <args>` runs one of Kafka's own command-line clients
 * (`console-producer`, `console-consumer`, `topics`) from the same jars, as
 * `kafka-console-producer.sh` and the like would, against `KAFKA_BROKERS` or the local broker.
 */
import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { runCli } from '../cli.ts';
import { brokersOf, runKafkaTool, startLocalKafka, stopLocalKafka } from './local-kafka.ts';
import { onShutdownSignal } from '../signals.ts';

const USAGE = 'usage: kafka-cli up | down | tools <console-producer|console-consumer|topics> <args>';
const isTools = process.argv[2] === 'tools';

await runCli(
  async () => {
    const config = loadConfig(process.env, { secrets: 'unused' });
    const log = createLogger({ level: config.logLevel, name: 'kafka' });
    const { dir, port, controllerPort, heapMb } = config.kafka.local;
    if (isTools) {
      process.exitCode = await runKafkaTool(process.argv[3] ?? '', process.argv.slice(4), brokersOf(config.kafka), log);
      return;
    }
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
  },
  isTools ? null : USAGE,
);
