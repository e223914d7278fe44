import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, withOverrides } from '../src/config.ts';

describe('loadConfig', () => {
  it('gives working defaults for an empty environment', () => {
    const config = loadConfig({});
    expect(config.http).toEqual({ host: '127.0.0.1', port: 8000, consumerPort: 8001, bodyBytesMax: 16_384 });
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

  it('refuses the built-in JWT secret in production', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', INTERNAL_COMMAND_SECRET: 'i'.repeat(40) })).toThrow(/JWT_SECRET/);
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40), INTERNAL_COMMAND_SECRET: 'i'.repeat(40) }).env).toBe('production');
  });

  it('refuses to run in production without a secret for internal commands', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(40) })).toThrow(/INTERNAL_COMMAND_SECRET/);
    expect(() => loadConfig({ INTERNAL_COMMAND_SECRET: 'short' })).toThrow(/INTERNAL_COMMAND_SECRET/);
    const rotating = loadConfig({ INTERNAL_COMMAND_SECRET: 'n'.repeat(40), INTERNAL_COMMAND_SECRET_PREVIOUS: 'o'.repeat(40) });
    expect(rotating.internalCommands).toEqual({ secret: 'n'.repeat(40), previousSecret: 'o'.repeat(40) });
  });

  it('keeps the default reply-topic policy of the command contract in step with the default config', async () => {
    const { DEFAULT_REPLY_TOPIC_POLICY, replyTopicPolicyOf } = await import('../src/commands/reply-topics.ts');
    expect(replyTopicPolicyOf(loadConfig({}).topics)).toEqual(DEFAULT_REPLY_TOPIC_POLICY);
  });

  it('refuses an amount limit above the balance limit', () => {
    expect(() => loadConfig({ AMOUNT_MINOR_MAX: '1000', BALANCE_MINOR_MAX: '999' })).toThrow(/AMOUNT_MINOR_MAX/);
  });

  it('withOverrides replaces only what it is given', () => {
    const config = withOverrides(loadConfig({}), { http: { port: 1234 }, kafka: { brokers: ['h:1'] } });
    expect(config.http.port).toBe(1234);
    expect(config.http.host).toBe('127.0.0.1');
    expect(config.kafka.brokers).toEqual(['h:1']);
    expect(Object.isFrozen(config.kafka)).toBe(true);
  });
});
