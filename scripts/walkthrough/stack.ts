/**
 * The stack the walkthrough runs against: `npm start` itself (dist/start.js), with its own
 * broker and PostgreSQL in fresh folders under `.local/` and on free ports, so it neither sees
 * nor disturbs a stack already running. The same variables go to the walkthrough's shell, so
 * the operator commands there (`npm run users`, `rates`, `kafka:tools`, `example:events`)
 * find this stack exactly as they find `npm start`'s.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../src/log.ts';
import { REPO_ROOT } from '../../src/stack/local-kafka.ts';
import { removeLocalPostgres } from '../../src/stack/local-postgres.ts';

const STARTED_WITHIN_MS = 240_000;
const STOPPED_WITHIN_MS = 60_000;

export interface WalkthroughStack {
  /** The variables that point a process at this stack. */
  readonly env: Record<string, string>;
  /** What `npm start` printed, for a failure's message. */
  readonly output: () => string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Builds if stale, starts `npm start` on fresh data, and resolves once it says it is running. */
export async function startWalkthroughStack(): Promise<WalkthroughStack> {
  execFileSync(process.execPath, ['scripts/build-if-stale.mjs'], { cwd: REPO_ROOT, stdio: 'inherit' });
  const dir = `.local/walkthrough-${process.pid}`;
  const env = {
    PORT: String(await freePort()),
    KAFKA_LOCAL_DIR: `${dir}/kafka`,
    KAFKA_LOCAL_PORT: String(await freePort()),
    KAFKA_LOCAL_CONTROLLER_PORT: String(await freePort()),
    POSTGRES_LOCAL_DIR: `${dir}/postgres`,
    POSTGRES_LOCAL_PORT: String(await freePort()),
    // Anchors come from `npm run anchor` in the walkthrough only: a consumer's own, a minute
    // after start on a slow machine, would change the anchor ids it shows.
    ANCHOR_INTERVAL_S: '0',
  };
  const child = spawn(process.execPath, ['dist/start.js'], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const stack: WalkthroughStack = { env, output: () => output, stop: () => stopStack(child, dir) };
  const deadline = Date.now() + STARTED_WITHIN_MS;
  while (!output.includes('balance service is running')) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stack.stop();
      throw new Error(`npm start did not come up (exit ${child.exitCode}):\n${output.slice(-3_000)}`);
    }
    await sleep(100);
  }
  return stack;
}

/** SIGTERM, as Ctrl-C would (it stops its broker and database), bounded; then the data goes. */
async function stopStack(child: ChildProcess, dir: string): Promise<void> {
  if (child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    if ((await Promise.race([exited, sleep(STOPPED_WITHIN_MS, 'late')])) === 'late') {
      child.kill('SIGKILL');
      await exited;
    }
  }
  await removeLocalPostgres(`${dir}/postgres`, createLogger({ level: 'warn', name: 'walkthrough' }));
  await rm(path.join(REPO_ROOT, dir), { recursive: true, force: true });
}
