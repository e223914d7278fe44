/**
 * The service's configuration: every environment variable is declared once, in the settings tree
 * (src/config/schema.ts, src/config/kafka-settings.ts), with its type, bounds, default and
 * meaning; this parses the tree once at start-up into a frozen object of the tree's shape, checks
 * what spans several variables, and renders the documentation table (docs/configuration.md).
 */
import { OperatorError } from './cli.ts';
import {
  CONFIG_SETTINGS,
  DEV_ANCHOR_SIGNING_KEY,
  DEV_INTERNAL_COMMAND_SECRET,
  DEV_JWT_SECRET,
} from './config/schema.ts';
import { type Output, parseTree, sectionsOf, settingsOf, shownDefault } from './config/settings.ts';

/** The database the service uses on the local server when DATABASE_URL is unset. */
export const LOCAL_DATABASE_NAME = 'balance';

/** The configuration: the settings tree's shape, each value parsed by its setting's schema. */
export type Config = Output<typeof CONFIG_SETTINGS>;

/**
 * Secrets that are public: the built-in development ones and the placeholders that examples
 * and an earlier docker-compose.yml shipped. A process refuses them unless ALLOW_DEV_SECRETS.
 */
export const PUBLIC_SECRETS: ReadonlySet<string> = new Set([
  DEV_JWT_SECRET,
  DEV_INTERNAL_COMMAND_SECRET,
  DEV_ANCHOR_SIGNING_KEY,
  'change-me-to-a-long-random-secret-of-32-chars-or-more',
]);

/** Every environment variable the service reads, in the settings' order. */
export const CONFIG_VARIABLES: readonly string[] = settingsOf(CONFIG_SETTINGS).map((s) => s.env);

export class ConfigError extends OperatorError {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
  }
}

const names = {
  allowDevSecrets: CONFIG_SETTINGS.allowDevSecrets.env,
  jwtSecret: CONFIG_SETTINGS.jwt.secret.env,
  anchorKey: CONFIG_SETTINGS.anchors.signingKey.env,
  internalSecret: CONFIG_SETTINGS.internalCommands.settings.secret.env,
  internalPrevious: CONFIG_SETTINGS.internalCommands.settings.previous.env,
  internalKeys: CONFIG_SETTINGS.internalCommands.settings.older.env,
  amountMax: CONFIG_SETTINGS.limits.amountMinorMax.env,
  balanceMax: CONFIG_SETTINGS.limits.balanceMinorMax.env,
  kafkaPort: CONFIG_SETTINGS.kafka.local.port.env,
  kafkaControllerPort: CONFIG_SETTINGS.kafka.local.controllerPort.env,
};

/**
 * Parses the environment once. Throws ConfigError naming every bad variable. A tool that signs
 * and verifies nothing (migrations, users, verify) passes `secrets: 'unused'`, so it runs
 * without the service's secrets.
 */
export function loadConfig(
  source: Record<string, string | undefined> = process.env,
  options: { secrets: 'required' | 'unused' } = { secrets: 'required' },
): Config {
  const parsed = parseTree(CONFIG_SETTINGS, source);
  if (!parsed.ok) throw new ConfigError(parsed.problems);
  const config = parsed.value;
  const problems = options.secrets === 'required' ? secretProblems(config) : [];
  if (problems.length > 0) throw new ConfigError(problems);
  if (config.limits.amountMinorMax > config.limits.balanceMinorMax)
    throw new ConfigError([`${names.amountMax}: must not exceed ${names.balanceMax}`]);
  if (config.kafka.local.port === config.kafka.local.controllerPort)
    throw new ConfigError([`${names.kafkaControllerPort}: must differ from ${names.kafkaPort}`]);
  return deepFreeze(config);
}

/**
 * A public secret signs tokens anyone can forge, or settles anyone can fake: refused whatever
 * NODE_ENV says, unless ALLOW_DEV_SECRETS is set, and that is refused in production.
 */
function secretProblems(config: Config): string[] {
  if (config.env === 'production' && config.allowDevSecrets)
    return [`${names.allowDevSecrets}: must not be set in production`];
  if (config.allowDevSecrets) return [];
  const allow = `${names.allowDevSecrets}=true`;
  const problems: string[] = [];
  if (PUBLIC_SECRETS.has(config.jwt.secret))
    problems.push(
      `${names.jwtSecret}: must be set to a secret of your own (the built-in one is public; ${allow} allows it for local use)`,
    );
  if (PUBLIC_SECRETS.has(config.anchors.signingKey))
    problems.push(
      `${names.anchorKey}: must be set to a key of your own (with the public one anyone can sign an anchor; ${allow} allows it for local use)`,
    );
  const { secret, acceptedSecrets, replaySecrets } = config.internalCommands;
  if (PUBLIC_SECRETS.has(secret))
    problems.push(
      `${names.internalSecret}: must be set to a secret of your own (with the public one anyone who can publish to the command topic can forge settles; ${allow} allows it for local use)`,
    );
  // A retiring key is accepted like the current one: a public one would let anyone forge settles.
  if (acceptedSecrets.some((key) => PUBLIC_SECRETS.has(key)))
    problems.push(
      `${names.internalPrevious}: must not be a built-in secret (they are public: settles signed with it could be forged by anyone); drop it, or replay with ${allow} outside production`,
    );
  const publicKeys = replaySecrets.filter((key) => PUBLIC_SECRETS.has(key)).length;
  if (publicKeys > 0)
    problems.push(
      `${names.internalKeys}: ${publicKeys} of the keys is a built-in secret (they are public: settles signed with it could be forged by anyone); drop it, or replay with ${allow} outside production`,
    );
  return problems;
}

/** docs/configuration.md's tables: one per section of the settings tree, every variable once. */
export function configurationMarkdown(): string {
  return sectionsOf(CONFIG_SETTINGS)
    .map(({ section, settings }) =>
      [
        `### \`${section}\``,
        '',
        '| variable | default | meaning |',
        '| --- | --- | --- |',
        ...settings.map((s) => `| \`${s.env}\` | ${shownDefault(s)} | ${s.description} |`),
      ].join('\n'),
    )
    .join('\n\n');
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** Returns a copy of `config` with some parts replaced; used by tests and tools. */
export function withOverrides(config: Config, patch: DeepPartial<Config>): Config {
  return deepFreeze(merge(structuredClone(config), patch));
}

type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends object ? (T[K] extends readonly unknown[] ? T[K] : DeepPartial<T[K]>) : T[K];
};

function merge<T>(target: T, patch: unknown): T {
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) return patch as T;
  const out = target as Record<string, unknown>;
  for (const [key, value] of Object.entries(patch)) {
    out[key] = value && typeof value === 'object' && !Array.isArray(value) ? merge(out[key] ?? {}, value) : value;
  }
  return out as T;
}
