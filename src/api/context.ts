/** Everything the routes need, built once per app. */
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { CommandClient } from '../client/command-client.ts';
import type { Logger } from '../log.ts';
import type { ReadinessProbe } from '../health.ts';
import type { PrincipalAttestation } from '../commands/principal-proof.ts';
import type { PrincipalRateLimit } from './rate-limit.ts';
import type { TokenService } from './auth/tokens.ts';
import type { TokenStates } from './auth/token-states.ts';
import type { Permissions } from '../commands/permissions.ts';
import type { LoginThrottle } from './auth/throttle.ts';
import type { Metrics } from '../metrics.ts';
import type { InFlightHandlers } from './in-flight.ts';
import type { PendingCommands } from './pending.ts';
import type { HttpSchemas } from './schemas.ts';

export interface ApiContext {
  readonly config: Config;
  readonly log: Logger;
  readonly pool: pg.Pool;
  /** Null when the gateway runs without Kafka (reads still work; commands answer 503). */
  readonly client: CommandClient | null;
  readonly readiness: ReadinessProbe;
  readonly tokens: TokenService;
  readonly tokenStates: TokenStates;
  readonly permissions: Permissions;
  /** Signs who sent each command, for the consumer to record. */
  readonly attestation: PrincipalAttestation;
  /**
   * Whether the consumers accept the key it signs with (signing-key-watch.ts): while they do not,
   * commands are refused with 503 instead of being published to be dead-lettered.
   */
  readonly signingKey: { readonly accepted: boolean; readonly problem: string | null };
  readonly throttle: LoginThrottle;
  /** Writes per principal (RATE_LIMIT_PER_S, RATE_LIMIT_BURST). */
  readonly rateLimit: PrincipalRateLimit;
  readonly pending: PendingCommands;
  readonly metrics: Metrics;
  readonly schemas: HttpSchemas;
  readonly inFlight: InFlightHandlers;
}
