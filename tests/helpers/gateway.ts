/** A gateway app for tests: the real app factory over the real database and broker. */
import { buildApp } from '../../src/api/app.ts';
import type { ApiContext } from '../../src/api/context.ts';
import { buildGateway, type Gateway } from '../../src/api/gateway.ts';
import { PrincipalRateLimit } from '../../src/api/rate-limit.ts';
import { LoginThrottle } from '../../src/api/auth/throttle.ts';
import { TokenService } from '../../src/api/auth/tokens.ts';
import { TokenStates } from '../../src/api/auth/token-states.ts';
import { Permissions } from '../../src/commands/permissions.ts';
import { PrincipalAttestation } from '../../src/commands/principal-proof.ts';
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
    readiness: async () => ({
      ready: true,
      checks: { postgres: { ok: true, latencyMs: 0 }, kafka: { ok: true, latencyMs: 0 } },
    }),
    tokens: new TokenService(config.jwt),
    tokenStates: new TokenStates(db.pool, config.auth.tokenStateCacheMs),
    permissions: new Permissions(config.auth.userActions),
    attestation: new PrincipalAttestation(config.internalCommands),
    signingKey: { accepted: true, problem: null },
    throttle: new LoginThrottle(),
    rateLimit: new PrincipalRateLimit(config.auth.rateLimitPerS, config.auth.rateLimitBurst),
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
  await gateway.signingKey.start();
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
/** A real hash costs half a second: each password is hashed once per test process. */
const hashes = new Map<string, Promise<string>>();

/** Creates a user directly in the database and signs an access token for it. */
export async function createUser(
  db: TestDatabase,
  config: Config,
  role: Role = 'user',
  password = 'correct horse battery',
  services: number[] | null = null,
  actions: string[] | null = null,
): Promise<TestUser> {
  const username = `${role}-${++userSequence}-${Date.now().toString(36)}`;
  if (!hashes.has(password)) hashes.set(password, hashPassword(password));
  const id = await insertUser(db.pool, username, await hashes.get(password)!, role, services, actions);
  const access = await new TokenService(config.jwt).issueAccess({ userId: id, role, version: 0 });
  return { id, username, access, header: { authorization: `Bearer ${access}` } };
}
