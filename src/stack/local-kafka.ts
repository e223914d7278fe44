/**
 * A real Apache Kafka 4 broker (KRaft, one combined broker+controller) started from the jars
 * on Maven Central, for machines without Docker. The jars are resolved once by Maven into a
 * git-ignored cache and reused; a pid file lets any later process stop the broker.
 */
import { OperatorError, UsageError } from '../cli.ts';
import type { Config } from '../config.ts';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile, rename, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createKafka, describeCluster } from '../kafka/client.ts';
import { waitForFreePort } from './ports.ts';
import type { Logger } from '../log.ts';

const run = promisify(execFile);

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const INFRA_DIR = path.join(REPO_ROOT, 'infra/kafka');
const POM_FILE = path.join(INFRA_DIR, 'pom.xml');
const LOG4J_FILE = path.join(INFRA_DIR, 'log4j2.properties');
/** The command-line tools log warnings only, to standard error: their standard output is their answer. */
const TOOLS_LOG4J_FILE = path.join(INFRA_DIR, 'log4j2-tools.properties');
/** Shared by every local broker (npm start, tests): the jars do not depend on ports or data. */
const LIBS_CACHE_DIR = path.join(REPO_ROOT, '.local/kafka-libs');

const READY_POLL_MS = 250;
const STOP_WAIT_MS = 20_000;
const MAVEN_WAIT_MS = 10 * 60_000;

export class KafkaUnavailableError extends OperatorError {
  override readonly name = 'KafkaUnavailableError';
}

export interface LocalKafkaOptions {
  /** Folder for this broker's data, config, log and pid file. */
  readonly dir: string;
  readonly port: number;
  readonly controllerPort: number;
  readonly heapMb: number;
  readonly readyWaitMs: number;
  /** Start from empty storage (tests); otherwise data survives restarts. */
  readonly fresh?: boolean;
  readonly log: Logger;
}

export interface LocalKafka {
  readonly brokers: string[];
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code when the broker process ends, for whatever reason. */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
  /** Sends the broker SIGTERM and returns at once: for an exit that cannot wait (it stops by itself). */
  signalStop(): void;
}

/**
 * The brokers an operator command uses: `KAFKA_BROKERS`, else the local broker `npm start` runs
 * (as the database is `DATABASE_URL`, else the local server).
 */
export function brokersOf(kafka: Config['kafka']): string[] {
  return kafka.brokers ?? [`127.0.0.1:${kafka.local.port}`];
}

export async function startLocalKafka(options: LocalKafkaOptions): Promise<LocalKafka> {
  const dir = path.resolve(REPO_ROOT, options.dir);
  const files = brokerFiles(dir);
  await mkdir(dir, { recursive: true });
  await stopFromPidFile(files.pid, options.log);
  if (options.fresh) await rm(files.data, { recursive: true, force: true });
  const libs = await ensureKafkaJars(options.log);
  await writeFile(files.properties, serverProperties(options, files.data));
  if (!existsSync(path.join(files.data, 'meta.properties'))) await formatStorage(libs, files.properties);
  // Another broker on our ports would answer our readiness check and then leave us with none.
  for (const port of [options.port, options.controllerPort])
    await waitForFreePort(port, PORT_FREE_WAIT_MS, 'Kafka broker', (command) => command.includes('kafka.Kafka'));

  const child = spawnBroker(libs, files, options.heapMb);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await writeFile(files.pid, String(child.pid));
  const brokers = [`127.0.0.1:${options.port}`];
  try {
    await waitUntilReady(child, brokers, options, files.log, await clusterIdOf(files.data));
  } catch (error) {
    await stopProcess(child.pid!, options.log);
    throw error;
  }
  options.log.info({ brokers, pid: child.pid, log: files.log }, 'local Kafka broker is ready');
  return {
    brokers,
    pid: child.pid!,
    logFile: files.log,
    exited,
    stop: async () => {
      await stopProcess(child.pid!, options.log);
      await rm(files.pid, { force: true });
    },
    signalStop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    },
  };
}

/** How long a start waits for a port a stopping process still holds. */
const PORT_FREE_WAIT_MS = 30_000;

/** The cluster id the storage was formatted with (meta.properties), to know our broker from another. */
async function clusterIdOf(dataDir: string): Promise<string | null> {
  const meta = await readFile(path.join(dataDir, 'meta.properties'), 'utf8').catch(() => '');
  return /^cluster\.id=(.+)$/m.exec(meta)?.[1]?.trim() ?? null;
}

/** Kafka's command-line clients by the name of their script (`kafka-<name>.sh`), and their classes. */
export const KAFKA_TOOLS: Readonly<Record<string, string>> = {
  'console-producer': 'org.apache.kafka.tools.ConsoleProducer',
  'console-consumer': 'org.apache.kafka.tools.consumer.ConsoleConsumer',
  topics: 'org.apache.kafka.tools.TopicCommand',
};

/**
 * Runs one of Kafka's own command-line clients from the cached jars, on this terminal, against
 * `brokers` unless the arguments name a `--bootstrap-server`; its exit code.
 */
export async function runKafkaTool(
  name: string,
  args: readonly string[],
  brokers: readonly string[],
  log: Logger,
): Promise<number> {
  const main = KAFKA_TOOLS[name];
  if (!main) throw new UsageError(`unknown Kafka tool "${name}": one of ${Object.keys(KAFKA_TOOLS).join(', ')}`);
  const libs = await ensureKafkaJars(log);
  const bootstrap = args.includes('--bootstrap-server') ? [] : ['--bootstrap-server', brokers.join(',')];
  const java = [`-Dlog4j2.configurationFile=${TOOLS_LOG4J_FILE}`, '-cp', `${libs}/*`, main];
  const child = spawn('java', [...java, ...bootstrap, ...args], { stdio: 'inherit' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(code ?? 1)));
}

/** Stops a broker left running by an earlier process, found through its pid file. */
export async function stopLocalKafka(dir: string, log: Logger): Promise<boolean> {
  return stopFromPidFile(brokerFiles(path.resolve(REPO_ROOT, dir)).pid, log);
}

function brokerFiles(dir: string) {
  return {
    data: path.join(dir, 'data'),
    properties: path.join(dir, 'server.properties'),
    pid: path.join(dir, 'kafka.pid'),
    log: path.join(dir, 'broker.log'),
  };
}

export function serverProperties(options: Pick<LocalKafkaOptions, 'port' | 'controllerPort'>, dataDir: string): string {
  const lines = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    // A static quorum: --standalone is only for dynamic quorums.
    'controller.quorum.voters': `1@127.0.0.1:${options.controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${options.port},CONTROLLER://127.0.0.1:${options.controllerPort}`,
    // Clients only ever see the PLAINTEXT listener, never the controller's.
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${options.port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': dataDir,
    'auto.create.topics.enable': 'false',
    'num.partitions': '1',
    // One broker: every replication factor and min ISR must be 1 or internal topics never appear.
    'default.replication.factor': '1',
    'min.insync.replicas': '1',
    'offsets.topic.replication.factor': '1',
    'offsets.topic.num.partitions': '4',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'transaction.state.log.num.partitions': '4',
    'share.coordinator.state.topic.replication.factor': '1',
    'share.coordinator.state.topic.min.isr': '1',
    'group.initial.rebalance.delay.ms': '0',
    'log.retention.hours': '168',
    'log.segment.bytes': String(64 * 1024 * 1024),
  };
  return (
    Object.entries(lines)
      .map(([key, value]) => `${key}=${value}`)
      .join('\n') + '\n'
  );
}

/**
 * Resolves the broker's jars with Maven into the cache, once per version of the pom. A marker
 * file holding the pom's hash is written last, so an interrupted download is redone.
 */
export async function ensureKafkaJars(log: Logger): Promise<string> {
  const pom = await readFile(POM_FILE);
  const hash = createHash('sha256').update(pom).digest('hex').slice(0, 16);
  const libs = path.join(LIBS_CACHE_DIR, hash);
  const marker = path.join(libs, '.complete');
  if (existsSync(marker)) return libs;
  await requireCommand('java', ['-version'], 'Java 17 or newer');
  await requireCommand('mvn', ['-v'], 'Apache Maven');
  log.info({ into: libs }, 'resolving the Kafka broker jars from Maven Central (first run only)');
  const staging = `${libs}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await run(
    'mvn',
    [
      '-q',
      '-B',
      '-f',
      POM_FILE,
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${staging}`,
    ],
    { timeout: MAVEN_WAIT_MS, maxBuffer: 16 * 1024 * 1024 },
  ).catch((error: Error & { stdout?: string }) => {
    throw new KafkaUnavailableError(`Maven could not resolve the Kafka jars: ${error.stdout ?? error.message}`);
  });
  const jars = (await readdir(staging)).filter((file) => file.endsWith('.jar'));
  if (!jars.some((jar) => jar.startsWith('kafka_2.13-')))
    throw new KafkaUnavailableError('Maven resolved no kafka_2.13 jar');
  await writeFile(path.join(staging, '.complete'), `${jars.length} jars\n`);
  await rm(libs, { recursive: true, force: true });
  await rename(staging, libs);
  return libs;
}

async function requireCommand(command: string, args: string[], what: string): Promise<void> {
  try {
    await run(command, args, { timeout: 30_000 });
  } catch {
    throw new KafkaUnavailableError(
      `'${command}' is not available. The local Kafka broker needs ${what}; install it, ` +
        `or set KAFKA_BROKERS to a broker you already run.`,
    );
  }
}

/** A KRaft cluster id: 16 random bytes in URL-safe base64 without padding. */
export function newClusterId(): string {
  return Buffer.from(randomUUID().replaceAll('-', ''), 'hex').toString('base64url');
}

/**
 * Formats a broker's storage. The id may start with '-' (one in 64 do), so it is passed as
 * --cluster-id=<id>: as a separate argument the tool would read it as an option and fail.
 */
export async function formatStorage(
  libs: string,
  properties: string,
  clusterId: string = newClusterId(),
): Promise<void> {
  await run(
    'java',
    ['-cp', `${libs}/*`, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, '-c', properties, '-g'],
    {
      timeout: 60_000,
    },
  );
}

function spawnBroker(libs: string, files: ReturnType<typeof brokerFiles>, heapMb: number): ChildProcess {
  const out = openSync(files.log, 'a');
  try {
    return spawn(
      'java',
      [
        `-Xms${Math.min(256, heapMb)}m`,
        `-Xmx${heapMb}m`,
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-Djava.awt.headless=true',
        `-Dlog4j2.configurationFile=${LOG4J_FILE}`,
        '-cp',
        `${libs}/*`,
        'kafka.Kafka',
        files.properties,
      ],
      // Its own process group: a terminal's Ctrl-C (SIGINT to the whole foreground group) is for
      // npm start, which stops the broker only after the consumer has left its group. Killed
      // together, the consumer could not leave, and the next start waited out the session.
      { stdio: ['ignore', out, out], detached: true },
    );
  } finally {
    closeSync(out);
  }
}

/** Ready: our own process answers, with the cluster id of our storage (not another broker on the port). */
async function waitUntilReady(
  child: ChildProcess,
  brokers: string[],
  options: LocalKafkaOptions,
  logFile: string,
  clusterId: string | null,
) {
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  const kafka = createKafka({
    brokers,
    clientId: 'local-kafka-probe',
    log: options.log.child({}, { level: 'silent' }),
    retriesMax: 0,
  });
  const deadline = Date.now() + options.readyWaitMs;
  while (Date.now() < deadline) {
    if (exited !== null) throw new KafkaUnavailableError(`the Kafka broker exited with code ${exited}; see ${logFile}`);
    try {
      const described = await describeCluster(kafka, 2_000);
      if (exited !== null) continue;
      if (clusterId === null || described.clusterId === clusterId) return;
      throw new KafkaUnavailableError(
        `port ${options.port} is answered by a Kafka cluster (${described.clusterId}) that is not the one this broker stores (${clusterId}); stop the other broker, or set KAFKA_LOCAL_PORT to a free port`,
      );
    } catch (error) {
      if (error instanceof KafkaUnavailableError) throw error;
      await sleep(READY_POLL_MS);
    }
  }
  throw new KafkaUnavailableError(`the Kafka broker was not ready within ${options.readyWaitMs} ms; see ${logFile}`);
}

async function stopFromPidFile(pidFile: string, log: Logger): Promise<boolean> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  await rm(pidFile, { force: true });
  if (!Number.isInteger(pid) || pid <= 0 || !(await isKafkaProcess(pid))) return false;
  log.warn({ pid }, 'stopping a local Kafka broker left running by an earlier process');
  await stopProcess(pid, log);
  return true;
}

/** Guards against a recycled pid: only a java process running kafka.Kafka is ours to stop. */
async function isKafkaProcess(pid: number): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('kafka.Kafka');
}

async function stopProcess(pid: number, log: Logger): Promise<void> {
  if (!isAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + STOP_WAIT_MS;
  while (Date.now() < deadline && isAlive(pid)) await sleep(100);
  if (isAlive(pid)) {
    log.warn({ pid }, 'the Kafka broker did not stop after SIGTERM; sending SIGKILL');
    process.kill(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(50);
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
