/**
 * `npm start` as a user runs it: its own broker from jars and its own PostgreSQL, then Ctrl-C.
 * Stopping must stop all of it, in order, and leave no broker or database server behind.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../src/stack/local-kafka.ts';
import { localPostgresDataDir, removeLocalPostgres } from '../src/stack/local-postgres.ts';
import { freePort, isRunning, spawnService, type ServiceProcess } from './helpers/processes.ts';
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

  async function startService(options: { ownProcessGroup?: boolean } = {}): Promise<ServiceProcess> {
    service = spawnService('src/start.ts', env, [], options);
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

  it('stops the gateway, the consumer, its broker and its PostgreSQL on SIGTERM, and says so', async () => {
    const running = await startService();
    const broker = Number((await readFile(path.join(REPO_ROOT, kafkaDir, 'kafka.pid'), 'utf8')).trim());
    const postgres = Number(
      (await readFile(path.join(await localPostgresDataDir(postgresDir, testLog), 'postmaster.pid'), 'utf8')).split(
        '\n',
      )[0],
    );
    children.push(broker, postgres);
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
  });

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
