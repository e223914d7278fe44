/**
 * testcontainers, used only where a container engine answers (Docker Desktop, a CI runner with
 * Docker). Loaded lazily, so machines without one never touch the library.
 */
import { access } from 'node:fs/promises';

export async function containerEngineAvailable(): Promise<boolean> {
  if (process.env.TESTCONTAINERS_DISABLED === 'true') return false;
  if (!process.env.DOCKER_HOST) {
    const socket = await access('/var/run/docker.sock').then(
      () => true,
      () => false,
    );
    if (!socket) return false;
  }
  try {
    const { getContainerRuntimeClient } = await import('testcontainers');
    await getContainerRuntimeClient();
    return true;
  } catch {
    return false;
  }
}

export async function startKafkaContainer(): Promise<{ brokers: string; stop: () => Promise<void> }> {
  const { KafkaContainer } = await import('@testcontainers/kafka');
  const container = await new KafkaContainer('apache/kafka:4.1.1').withKraft().start();
  return {
    brokers: `${container.getHost()}:${container.getMappedPort(9093)}`,
    stop: async () => void (await container.stop()),
  };
}

export async function startPostgresContainer(): Promise<{ url: string; stop: () => Promise<void> }> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer('postgres:15-alpine').start();
  return { url: container.getConnectionUri(), stop: async () => void (await container.stop()) };
}
