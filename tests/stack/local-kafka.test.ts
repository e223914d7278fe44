import { describe, expect, it } from 'vitest';
import { serverProperties } from '../../src/stack/local-kafka.ts';

function parse(text: string): Map<string, string> {
  return new Map(
    text
      .trim()
      .split('\n')
      .map((line) => line.split('=', 2) as [string, string]),
  );
}

describe('serverProperties', () => {
  const props = parse(serverProperties({ port: 19092, controllerPort: 19093 }, '/tmp/data'));

  it('runs one combined broker and controller with a static quorum', () => {
    expect(props.get('process.roles')).toBe('broker,controller');
    expect(props.get('controller.quorum.voters')).toBe('1@127.0.0.1:19093');
  });

  it('advertises only the client listener, never the controller', () => {
    expect(props.get('advertised.listeners')).toBe('PLAINTEXT://127.0.0.1:19092');
    expect(props.get('advertised.listeners')).not.toContain('19093');
  });

  it('sets every replication factor and min ISR to 1 for a single broker', () => {
    // Named one by one: a key that went missing would fall back to the broker's default of 3.
    for (const key of [
      'default.replication.factor',
      'offsets.topic.replication.factor',
      'transaction.state.log.replication.factor',
      'transaction.state.log.min.isr',
      'share.coordinator.state.topic.replication.factor',
      'share.coordinator.state.topic.min.isr',
    ]) {
      expect(props.get(key), key).toBe('1');
    }
    expect(props.get('offsets.topic.num.partitions')).toBeDefined();
    expect(props.get('group.initial.rebalance.delay.ms')).toBe('0');
  });

  it('never creates topics on first use', () => {
    expect(props.get('auto.create.topics.enable')).toBe('false');
  });
});
