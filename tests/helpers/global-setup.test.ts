import { describe, expect, it } from 'vitest';
import { refuseNonTestTargets } from './global-setup.ts';

describe('the test run refuses targets that are not clearly for tests', () => {
  it('refuses a database not named balance_test*, and a broker that is not local', () => {
    expect(() => refuseNonTestTargets({ DATABASE_URL: 'postgres://u@db.prod:5432/balance' })).toThrow(/balance_test/);
    expect(() => refuseNonTestTargets({ KAFKA_BROKERS: 'kafka-1.prod:9092' })).toThrow(/not a local broker/);
    expect(() => refuseNonTestTargets({ KAFKA_BROKERS: '127.0.0.1:9092,kafka-1.prod:9092' })).toThrow(
      /not a local broker/,
    );
  });

  it('accepts test targets, and anything with TEST_ALLOW_ANY_TARGET=true', () => {
    expect(() =>
      refuseNonTestTargets({
        DATABASE_URL: 'postgres://u@127.0.0.1:5432/balance_test',
        KAFKA_BROKERS: '127.0.0.1:39092',
      }),
    ).not.toThrow();
    expect(() => refuseNonTestTargets({})).not.toThrow();
    expect(() =>
      refuseNonTestTargets({ DATABASE_URL: 'postgres://u@db.prod:5432/balance', TEST_ALLOW_ANY_TARGET: 'true' }),
    ).not.toThrow();
  });
});
