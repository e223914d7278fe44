/** Service processes run as real child processes, so tests can SIGKILL them. */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../src/config.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The environment that makes a process use `config`'s broker, database and topics. */
export function envFor(config: Config): Record<string, string> {
  return {
    NODE_ENV: 'test',
    JWT_SECRET: config.jwt.secret,
    INTERNAL_COMMAND_SECRET: config.internalCommands.secret,
    ANCHOR_SIGNING_KEY: config.anchors.signingKey,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    DATABASE_URL: config.db.url!,
    KAFKA_BROKERS: config.kafka.brokers!.join(','),
    TOPIC_COMMANDS: config.topics.commands,
    TOPIC_REPLIES: config.topics.replies,
    TOPIC_DEAD_LETTERS: config.topics.deadLetters,
    TOPIC_EVENTS: config.topics.events,
    TOPIC_ANCHORS: config.topics.anchors,
    ANCHOR_INTERVAL_S: String(config.anchors.intervalS),
    REPLY_TOPIC_PREFIX: config.topics.replyPrefix,
    COMMAND_PARTITIONS: String(config.topics.commandPartitions),
    CONSUMER_GROUP: config.consumer.group,
    CONSUMER_SESSION_TIMEOUT_MS: String(config.consumer.sessionTimeoutMs),
    BATCH_COMMANDS_MAX: String(config.consumer.batchCommandsMax),
    CONSUMER_HTTP_PORT: '0',
  };
}

export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  readonly output: () => string;
  kill(signal: NodeJS.Signals): Promise<number | null>;
}

/** Runs a TypeScript entry point with node itself (not npx), so the pid is the service's own. */
export function spawnService(
  entry: string,
  env: Record<string, string>,
  args: readonly string[] = [],
  options: { ownProcessGroup?: boolean } = {},
): ServiceProcess {
  return watched(process.execPath, ['--import', 'tsx', entry, ...args], env, options.ownProcessGroup ?? false);
}

/**
 * Runs an npm script as a user does: npm is the child (and, in its own process group, the
 * group's leader), and the service its child. What npm does with signals is part of the test.
 */
export function spawnNpm(script: string, env: Record<string, string>): ServiceProcess {
  return watched('npm', ['run', '--silent', script], env, true);
}

function watched(
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  ownProcessGroup: boolean,
): ServiceProcess {
  const child = spawn(command, args, {
    cwd: ROOT,
    // As a terminal runs it: the leader of a process group that Ctrl-C signals as a whole.
    detached: ownProcessGroup,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    output: () => output,
    async kill(signal) {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** A TCP port nothing listens on right now, for a child process to take. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** True while a process with this pid exists. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
