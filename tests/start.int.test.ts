/**
 * `npm start` as a user runs it: its own broker from jars and its own PostgreSQL, then Ctrl-C.
 * Stopping must stop all of it, in order, and leave no broker or database server behind.
 */
import { readdir, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../src/stack/local-kafka.ts';
import { localPostgresDataDir, removeLocalPostgres } from '../src/stack/local-postgres.ts';
import { freePort, isRunning, spawnNpm, spawnService, type ServiceProcess } from './helpers/processes.ts';
import { eventually, testLog, uniqueSuffix } from './helpers/stack.ts';

const STARTED_WITHIN_MS = 180_000;
const STOPPED_WITHIN_MS = 60_000;
/**
 * A restart is ready (consumer in its group, /readyz 200) well within the consumer's session
 * timeout (30 s), which is what a restart waits out when the last run could not leave its group.
 */
const READY_AGAIN_WITHIN_MS = 20_000;

describe('npm start', () => {
  const suffix = uniqueSuffix();
  const kafkaDir = `.local/kafka-start-it-${suffix}`;
  const postgresDir = `.local/postgres-start-it-${suffix}`;
  let service: ServiceProcess | null = null;
  const children: number[] = [];

  afterAll(async () => {
    await service?.kill('SIGKILL');
    for (const pid of children) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
    await rm(path.join(REPO_ROOT, kafkaDir), { recursive: true, force: true });
    await removeLocalPostgres(postgresDir, testLog);
  });

  let env: Record<string, string> = {};
  let port = 0;
  beforeAll(async () => {
    port = await freePort();
    env = {
      LOG_LEVEL: 'info',
      PORT: String(port),
      KAFKA_LOCAL_DIR: kafkaDir,
      KAFKA_LOCAL_PORT: String(await freePort()),
      KAFKA_LOCAL_CONTROLLER_PORT: String(await freePort()),
      POSTGRES_LOCAL_DIR: postgresDir,
      POSTGRES_LOCAL_PORT: String(await freePort()),
    };
  });

  async function startService(options: { ownProcessGroup?: boolean; viaNpm?: boolean } = {}): Promise<ServiceProcess> {
    service = options.viaNpm ? spawnNpm('dev', env) : spawnService('src/start.ts', env, [], options);
    const running = service;
    await eventually(
      async () => running.output().includes('balance service is running') || undefined,
      STARTED_WITHIN_MS,
      'npm start running',
    ).catch((error: Error) => {
      throw new Error(`${error.message}; output: ${running.output().slice(-1_000)}`);
    });
    return running;
  }

  const ready = async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null))?.status === 200;

  /** The pids of the broker and the PostgreSQL server the running service started. */
  async function serverPids(): Promise<{ broker: number; postgres: number }> {
    const broker = Number((await readFile(path.join(REPO_ROOT, kafkaDir, 'kafka.pid'), 'utf8')).trim());
    const postgres = Number(
      (await readFile(path.join(await localPostgresDataDir(postgresDir, testLog), 'postmaster.pid'), 'utf8')).split(
        '\n',
      )[0],
    );
    children.push(broker, postgres);
    return { broker, postgres };
  }

  /** Waits (bounded) until none of `pids` runs; what still runs after the bound is the answer. */
  async function stillRunning(pids: Record<string, number>, withinMs = STOPPED_WITHIN_MS): Promise<string[]> {
    const running = () =>
      Object.entries(pids)
        .filter(([, pid]) => isRunning(pid))
        .map(([name]) => name);
    await eventually(async () => (running().length === 0 ? true : undefined), withinMs, 'servers stopped').catch(
      () => {},
    );
    return running();
  }

  /** Processes of a process group. */
  async function groupMembers(pgid: number): Promise<number[]> {
    const members: number[] = [];
    for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      // pid (comm) state ppid pgrp ...: comm may hold spaces, so count from its closing parenthesis.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) members.push(Number(pid));
    }
    return members;
  }

  it('stops the gateway, the consumer, its broker and its PostgreSQL on SIGTERM, and says so', async () => {
    const running = await startService();
    const { broker, postgres } = await serverPids();
    expect([isRunning(broker), isRunning(postgres)]).toEqual([true, true]);
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);

    running.child.kill('SIGTERM');
    const code = await Promise.race([
      running.exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('still running'), STOPPED_WITHIN_MS)),
    ]);
    expect(code, running.output().slice(-1_000)).toBe(0);
    expect(running.output()).toMatch(/"msg":"stopped"/);
    expect({ broker: isRunning(broker), postgres: isRunning(postgres) }).toEqual({ broker: false, postgres: false });
    // A clean start and stop log no error: the waits of a first start are info or debug.
    expect(
      running
        .output()
        .split('\n')
        .filter((line) => /"level":(50|60)/.test(line)),
    ).toEqual([]);
  });

  it('run by npm, stops everything on SIGTERM to its process group, and the next start is ready within 20 s', async () => {
    const first = await startService({ viaNpm: true });
    const servers = await serverPids();
    const group = first.child.pid!;
    // npm leaves at once on SIGTERM; the service must still stop its broker and PostgreSQL.
    process.kill(-group, 'SIGTERM');
    expect(await stillRunning(servers), first.output().slice(-1_500)).toEqual([]);
    await eventually(
      async () => ((await groupMembers(group)).length === 0 ? true : undefined),
      STOPPED_WITHIN_MS,
    ).catch(() => {});
    expect(await groupMembers(group)).toEqual([]);
    expect(first.output()).not.toMatch(/second signal/);

    const restarted = Date.now();
    const second = await startService();
    const readyAfterMs = await eventually(
      async () => ((await ready()) ? Date.now() - restarted : undefined),
      STARTED_WITHIN_MS,
      'the restart ready',
    );
    expect(readyAfterMs, second.output().slice(-1_000)).toBeLessThan(READY_AGAIN_WITHIN_MS);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('after a run killed outright, stops the broker and PostgreSQL it left and starts afresh', async () => {
    const first = await startService();
    const left = await serverPids();
    first.child.kill('SIGKILL');
    await first.exited;
    // Their own process groups: a SIGKILL of the service leaves both running, unowned.
    expect([isRunning(left.broker), isRunning(left.postgres)]).toEqual([true, true]);
    const second = await startService();
    await eventually(async () => (await ready()) || undefined, STARTED_WITHIN_MS, 'the second run ready');
    expect(second.output()).toMatch(/stopping a local PostgreSQL left running by an earlier run/);
    expect(await stillRunning(left, 1_000)).toEqual([]);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });

  it('fails at once, naming the port and its holder, when another process holds the broker port', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(Number(env.KAFKA_LOCAL_PORT), '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const run = spawnService('src/start.ts', env);
      const code = await Promise.race([
        run.exited,
        new Promise<string>((resolve) => setTimeout(() => resolve('still running'), STOPPED_WITHIN_MS)),
      ]);
      expect(code).toBe(1);
      expect(Date.now() - started).toBeLessThan(20_000);
      expect(run.output()).toMatch(
        new RegExp(`port ${env.KAFKA_LOCAL_PORT}, which the local Kafka broker needs, is held by pid ${process.pid}`),
      );
      // Nothing of it is left running: its PostgreSQL, started beside, was stopped.
      const { postgres } = await serverPidsIfAny();
      if (postgres !== null) expect(await stillRunning({ postgres }, 5_000)).toEqual([]);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  async function serverPidsIfAny(): Promise<{ postgres: number | null }> {
    const text = await readFile(
      path.join(await localPostgresDataDir(postgresDir, testLog), 'postmaster.pid'),
      'utf8',
    ).catch(() => '');
    const pid = Number(text.split('\n')[0]);
    return { postgres: pid > 0 ? pid : null };
  }

  it('on Ctrl-C (SIGINT to its whole process group) leaves its group before the broker stops, so a restart is ready at once', async () => {
    const first = await startService({ ownProcessGroup: true });
    await eventually(async () => (await ready()) || undefined, STARTED_WITHIN_MS, 'the first run ready');
    // What a terminal does on Ctrl-C: the signal goes to every process of the foreground group.
    process.kill(-first.child.pid!, 'SIGINT');
    const code = await Promise.race([
      first.exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('still running'), STOPPED_WITHIN_MS)),
    ]);
    expect(code, first.output().slice(-1_000)).toBe(0);
    expect(first.output()).toMatch(/"msg":"command consumer stopped"/);

    const restarted = Date.now();
    const second = await startService();
    const readyAfterMs = await eventually(
      async () => ((await ready()) ? Date.now() - restarted : undefined),
      STARTED_WITHIN_MS,
      'the restart ready',
    );
    expect(readyAfterMs, second.output().slice(-1_000)).toBeLessThan(READY_AGAIN_WITHIN_MS);
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  });
});
