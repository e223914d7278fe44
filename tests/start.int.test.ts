/**
 * `npm start` as a user runs it: its own broker from jars and its own PostgreSQL, then Ctrl-C.
 * Stopping must stop all of it, in order, and leave no broker or database server behind.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../src/stack/local-kafka.ts';
import { localPostgresDataDir, removeLocalPostgres } from '../src/stack/local-postgres.ts';
import { freePort, isRunning, spawnService, type ServiceProcess } from './helpers/processes.ts';
import { eventually, testLog, uniqueSuffix } from './helpers/stack.ts';

const STARTED_WITHIN_MS = 180_000;
const STOPPED_WITHIN_MS = 60_000;

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

  it('stops the gateway, the consumer, its broker and its PostgreSQL on SIGTERM, and says so', async () => {
    const port = await freePort();
    service = spawnService('src/start.ts', {
      LOG_LEVEL: 'info',
      PORT: String(port),
      KAFKA_LOCAL_DIR: kafkaDir,
      KAFKA_LOCAL_PORT: String(await freePort()),
      KAFKA_LOCAL_CONTROLLER_PORT: String(await freePort()),
      POSTGRES_LOCAL_DIR: postgresDir,
      POSTGRES_LOCAL_PORT: String(await freePort()),
    });
    const running = service;
    await eventually(
      async () => running.output().includes('balance service is running') || undefined,
      STARTED_WITHIN_MS,
      'npm start running',
    ).catch((error: Error) => {
      throw new Error(`${error.message}; output: ${running.output().slice(-1_000)}`);
    });
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
});
