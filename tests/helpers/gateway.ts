/** A gateway app for tests: the real app factory over the real database and broker. */
import { buildApp } from '../../src/api/app.ts';
import type { ApiContext } from '../../src/api/context.ts';
import { buildGateway, type Gateway } from '../../src/api/gateway.ts';
import { LoginThrottle } from '../../src/api/auth/throttle.ts';
import { TokenService } from '../../src/api/auth/tokens.ts';
import { Metrics } from '../../src/metrics.ts';
import { InFlightHandlers } from '../../src/api/in-flight.ts';
import { PendingCommands } from '../../src/api/pending.ts';
import { createHttpSchemas } from '../../src/api/schemas.ts';
import type { Config } from '../../src/config.ts';
import type { Kafka } from '../../src/kafka/client.ts';
import { hashPassword } from '../../src/users/passwords.ts';
import { insertUser, type Role } from '../../src/users/store.ts';
import { testLog, type TestDatabase } from './stack.ts';

/** A context for buildApp without Kafka: for reads, auth and operations. */
export function contextWithoutKafka(config: Config, db: TestDatabase, patch: Partial<ApiContext> = {}): ApiContext {
  return {
    config,
    log: testLog,
    pool: db.pool,
    client: null,
    readiness: async () => ({ ready: true, checks: { postgres: { ok: true, latencyMs: 0 }, kafka: { ok: true, latencyMs: 0 } } }),
    tokens: new TokenService(config.jwt),
    throttle: new LoginThrottle(10, 60_000),
    pending: new PendingCommands(1_000, 60_000),
    metrics: new Metrics(),
    schemas: createHttpSchemas(config.limits),
    inFlight: new InFlightHandlers(),
    ...patch,
  };
}

export function appWithoutKafka(config: Config, db: TestDatabase, patch: Partial<ApiContext> = {}) {
  return buildApp(contextWithoutKafka(config, db, patch));
}

/** The full gateway with its command client connected to the broker. */
export async function startGateway(config: Config, db: TestDatabase, kafka: Kafka): Promise<Gateway> {
  const gateway = buildGateway({ config, kafka, pool: db.pool, log: testLog });
  await gateway.client.start();
  return gateway;
}

export interface TestUser {
  readonly id: number;
  readonly username: string;
  readonly access: string;
  readonly header: { authorization: string };
}

let userSequence = 0;

/** Creates a user directly in the database and signs an access token for it. */
export async function createUser(db: TestDatabase, config: Config, role: Role = 'user', password = 'correct horse battery'): Promise<TestUser> {
  const username = `${role}-${++userSequence}-${Date.now().toString(36)}`;
  const id = await insertUser(db.pool, username, await hashPassword(password), role);
  const access = await new TokenService(config.jwt).issue({ userId: id, role }, 'access');
  return { id, username, access, header: { authorization: `Bearer ${access}` } };
}
