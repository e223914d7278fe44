/**
 * Whether a local TCP port is free, and who holds it when not: a start must not take another
 * process's server for its own (a broker still stopping answers a readiness check, then goes).
 */
import { readdir, readFile, readlink } from 'node:fs/promises';
import net from 'node:net';
import { OperatorError } from '../cli.ts';
import { setTimeout as sleep } from 'node:timers/promises';

const FREE_POLL_MS = 250;

/** True if nothing listens on 127.0.0.1:`port` (a listen there succeeds). */
export async function portIsFree(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Waits for `port` to be free: up to `waitMs` while a process like ours holds it (`ours` of its
 * command line: one of an earlier run, still stopping), not at all for anything else. Then fails
 * with a message that names the port and, where the system tells, the process holding it.
 */
export async function waitForFreePort(
  port: number,
  waitMs: number,
  what: string,
  ours: (commandLine: string) => boolean,
): Promise<void> {
  const deadline = Date.now() + waitMs;
  while (!(await portIsFree(port))) {
    const holder = await holderOf(port);
    if (Date.now() >= deadline || (holder !== null && !ours(holder.commandLine))) {
      const who = holder ? `pid ${holder.pid} (${holder.commandLine.slice(0, 120)})` : 'another process';
      throw new OperatorError(
        `port ${port}, which the local ${what} needs, is held by ${who}; stop it, or choose another port in the settings`,
      );
    }
    await sleep(FREE_POLL_MS);
  }
}

/** The process listening on `port`, from /proc; null where the system does not tell. */
export async function holderOf(port: number): Promise<{ pid: number; commandLine: string } | null> {
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(table, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      // local address is hex ip:port; state 0A is LISTEN.
      if (fields[3] === '0A' && Number.parseInt(fields[1]?.split(':')[1] ?? '', 16) === port) inodes.add(fields[9]!);
    }
  }
  if (inodes.size === 0) return null;
  for (const pid of (await readdir('/proc').catch(() => [])).filter((name) => /^\d+$/.test(name))) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => []);
    for (const fd of fds) {
      const link = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const inode = /^socket:\[(\d+)\]$/.exec(link)?.[1];
      if (inode && inodes.has(inode)) {
        const commandLine = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''))
          .replaceAll('\0', ' ')
          .trim();
        return { pid: Number(pid), commandLine };
      }
    }
  }
  return null;
}
