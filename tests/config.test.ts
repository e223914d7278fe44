import { describe, expect, it } from 'vitest';
import { KeyRing, keyIdOf } from '../src/commands/key-ring.ts';
import { ConfigError, loadConfig as load, withOverrides } from '../src/config.ts';

const SECRETS = {
  JWT_SECRET: 'j'.repeat(40),
  INTERNAL_COMMAND_SECRET: 'i'.repeat(40),
  ANCHOR_SIGNING_KEY: 'a'.repeat(40),
};
/** A configuration with secrets of its own, as any deployment has. */
const loadConfig = (source: Record<string, string>) => load({ ...SECRETS, ...source });

describe('loadConfig', () => {
  it('gives working defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config.http).toEqual({
      host: '127.0.0.1',
      port: 8000,
      consumerPort: 8001,
      bodyBytesMax: 16_384,
      trustProxy: false,
      metrics: null,
      requestLog: 'slow',
      requestLogSlowMs: 1_000,
    });
    expect(config.kafka.produceLingerMs).toBe(1);
    expect(config.auth).toEqual({
      userActions: ['transfer'],
      allowMissingIdempotencyKey: false,
      allowTransfersToNewAccounts: false,
      tokenStateCacheMs: 5_000,
      rateLimitPerS: 1_000,
      rateLimitBurst: 2_000,
    });
    expect(config.topics.retentionMs).toEqual({
      commands: -1,
      replies: 86_400_000,
      deadLetters: 2_592_000_000,
      events: 604_800_000,
    });
    expect(config.db.url).toBeNull();
    expect(config.kafka.brokers).toBeNull();
    expect(config.topics.commands).toBe('balance.commands');
    expect(config.topics.replies).toBe('balance.replies');
    expect(config.topics.deadLetters).toBe('balance.commands.dlq');
    expect(config.limits.replyWaitMs).toBe(10_000);
  });

  it('parses numbers and lists from their string form', () => {
    const config = loadConfig({ PORT: '9000', KAFKA_BROKERS: 'a:9092,b:9093', COMMAND_PARTITIONS: '12' });
    expect(config.http.port).toBe(9000);
    expect(config.kafka.brokers).toEqual(['a:9092', 'b:9093']);
    expect(config.topics.commandPartitions).toBe(12);
  });

  it('reads the command fetch settings, 1 byte and 250 ms unless set, and refuses a minimum of 0 bytes', () => {
    expect(loadConfig({}).consumer).toMatchObject({ fetchBytesMin: 1, fetchWaitMs: 250 });
    const set = loadConfig({ CONSUMER_FETCH_BYTES_MIN: '16384', CONSUMER_FETCH_WAIT_MS: '5' });
    expect(set.consumer).toMatchObject({ fetchBytesMin: 16_384, fetchWaitMs: 5 });
    expect(() => loadConfig({ CONSUMER_FETCH_BYTES_MIN: '0' })).toThrow(ConfigError);
  });

  it('returns a deeply frozen object', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.http)).toBe(true);
    expect(() => {
      (config.http as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ DATABASE_URL: '', PORT: '' }).http.port).toBe(8000);
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['KAFKA_BROKERS', 'localhost'],
    ['DATABASE_URL', 'mysql://x@y/z'],
    ['BODY_BYTES_MAX', '-1'],
    ['TOPIC_COMMANDS', 'bad topic'],
    ['JWT_SECRET', 'short'],
    ['LOG_LEVEL', 'loud'],
  ])('rejects %s=%s and names the variable', (name, value) => {
    let thrown: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    expect((thrown as ConfigError).message).toContain(name);
  });

  it('refuses the public secrets whatever NODE_ENV says, unless ALLOW_DEV_SECRETS, which production refuses', () => {
    for (const env of [{}, { NODE_ENV: 'development' }, { NODE_ENV: 'production' }]) {
      expect(() => load({ ...env, INTERNAL_COMMAND_SECRET: 'i'.repeat(40) }), JSON.stringify(env)).toThrow(
        /JWT_SECRET/,
      );
      expect(() => load({ ...env, JWT_SECRET: 'j'.repeat(40) }), JSON.stringify(env)).toThrow(
        /INTERNAL_COMMAND_SECRET/,
      );
      // The placeholder an earlier docker-compose.yml fell back to is public too.
      expect(() =>
        load({ ...env, ...SECRETS, JWT_SECRET: 'change-me-to-a-long-random-secret-of-32-chars-or-more' }),
      ).toThrow(/JWT_SECRET/);
    }
    // A built-in secret kept as the retiring key would be accepted like the current one.
    for (const env of [{}, { NODE_ENV: 'production' }])
      expect(() =>
        load({ ...env, ...SECRETS, INTERNAL_COMMAND_SECRET_PREVIOUS: 'dev-only-internal-command-secret-0123456789' }),
      ).toThrow(/INTERNAL_COMMAND_SECRET_PREVIOUS: must not be a built-in secret/);
    expect(
      load({ ...SECRETS, INTERNAL_COMMAND_SECRET_PREVIOUS: 'p'.repeat(40) }).internalCommands.acceptedSecrets,
    ).toEqual(['p'.repeat(40)]);
    // The same for every older key a replay lists.
    expect(() =>
      load({ ...SECRETS, INTERNAL_COMMAND_KEYS: `${'k'.repeat(40)},dev-only-internal-command-secret-0123456789` }),
    ).toThrow(/INTERNAL_COMMAND_KEYS: 1 of the keys is a built-in secret/);
    expect(load({ ALLOW_DEV_SECRETS: 'true' }).jwt.secret).toMatch(/^dev-only/);
    expect(() => load({ ALLOW_DEV_SECRETS: 'true', NODE_ENV: 'production' })).toThrow(/ALLOW_DEV_SECRETS/);
    expect(load({ NODE_ENV: 'production', ...SECRETS }).env).toBe('production');
  });

  it('lets tools that sign nothing run without the secrets', () => {
    expect(load({}, { secrets: 'unused' }).db.url).toBeNull();
  });

  it('reads USER_ACTIONS, TRUST_PROXY and a separate metrics listener', () => {
    expect(loadConfig({ USER_ACTIONS: 'deposit,withdraw,reserve,transfer' }).auth.userActions).toEqual([
      'deposit',
      'withdraw',
      'reserve',
      'transfer',
    ]);
    expect(() => loadConfig({ USER_ACTIONS: 'transfer,mint' })).toThrow(/USER_ACTIONS/);
    expect(loadConfig({ TRUST_PROXY: '1' }).http.trustProxy).toBe(1);
    expect(loadConfig({ TRUST_PROXY: '10.0.0.0/8' }).http.trustProxy).toBe('10.0.0.0/8');
    expect(loadConfig({ METRICS_HOST: '127.0.0.1', METRICS_PORT: '9100' }).http.metrics).toEqual({
      host: '127.0.0.1',
      port: 9100,
    });
    expect(() => loadConfig({ METRICS_PORT: '9100' })).toThrow(/METRICS_HOST/);
  });

  it('refuses to run without a secret for internal commands, and accepts a previous one during a rotation', () => {
    expect(() => loadConfig({ INTERNAL_COMMAND_SECRET: 'short' })).toThrow(/INTERNAL_COMMAND_SECRET/);
    const rotating = loadConfig({
      INTERNAL_COMMAND_SECRET: 'n'.repeat(40),
      INTERNAL_COMMAND_SECRET_PREVIOUS: 'o'.repeat(40),
    });
    expect(rotating.internalCommands).toEqual({
      secret: 'n'.repeat(40),
      acceptedSecrets: ['o'.repeat(40)],
      replaySecrets: [],
    });
    // A log that saw three rotations: every older key is listed (spaces around commas are
    // ignored) for the replay tool alone; the live consumer accepts none of them.
    const keys = ['a', 'b', 'c'].map((c) => c.repeat(40));
    const replaying = loadConfig({ INTERNAL_COMMAND_SECRET: 'n'.repeat(40), INTERNAL_COMMAND_KEYS: keys.join(' , ') });
    expect(replaying.internalCommands).toEqual({ secret: 'n'.repeat(40), acceptedSecrets: [], replaySecrets: keys });
    // Only a replay's ring verifies with them (and only where the log says they were accepted).
    expect(new KeyRing(replaying.internalCommands).verifying().map((k) => k.id)).toEqual([keyIdOf('n'.repeat(40))]);
    expect(
      new KeyRing(replaying.internalCommands, { withReplayKeys: true })
        .verifying()
        .map((k) => k.id)
        .sort(),
    ).toEqual([...keys, 'n'.repeat(40)].map(keyIdOf).sort());
    expect(() => loadConfig({ INTERNAL_COMMAND_KEYS: `${'a'.repeat(40)},short` })).toThrow(/INTERNAL_COMMAND_KEYS/);
  });

  it('keeps the default reply-topic policy of the command contract in step with the default config', async () => {
    const { DEFAULT_REPLY_TOPIC_POLICY, replyTopicPolicyOf } = await import('../src/commands/reply-topics.ts');
    expect(replyTopicPolicyOf(loadConfig({}).topics)).toEqual(DEFAULT_REPLY_TOPIC_POLICY);
  });

  it('refuses an amount limit above the balance limit', () => {
    expect(() => loadConfig({ AMOUNT_MINOR_MAX: '1000', BALANCE_MINOR_MAX: '999' })).toThrow(/AMOUNT_MINOR_MAX/);
  });

  it("takes the reports' time zone as an IANA name, and refuses anything else", () => {
    expect(loadConfig({}).reports.timeZone).toBe('Europe/Moscow');
    expect(loadConfig({ REPORT_TIME_ZONE: 'America/New_York' }).reports.timeZone).toBe('America/New_York');
    for (const bad of ['Mars/Olympus', "Europe/Moscow'; DROP TABLE users; --", 'x'.repeat(100)])
      expect(() => loadConfig({ REPORT_TIME_ZONE: bad }), bad).toThrow(/REPORT_TIME_ZONE/);
  });

  it('withOverrides replaces only what it is given', () => {
    const config = withOverrides(loadConfig({}), { http: { port: 1234 }, kafka: { brokers: ['h:1'] } });
    expect(config.http.port).toBe(1234);
    expect(config.http.host).toBe('127.0.0.1');
    expect(config.kafka.brokers).toEqual(['h:1']);
    expect(Object.isFrozen(config.kafka)).toBe(true);
  });
});
