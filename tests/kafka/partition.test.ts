import { describe, expect, it } from 'vitest';
import { javaCompatiblePartitioner } from '../../src/kafka/client.ts';
import { partitionOfKey } from '../../src/kafka/partition.ts';

describe('partitionOfKey', () => {
  it('matches the partition kafkajs\'s default (Java-compatible) partitioner picks', () => {
    const partitioner = javaCompatiblePartitioner();
    for (const partitions of [1, 3, 6, 12, 64]) {
      const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({ partitionId, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }));
      for (let user = 1; user < 2_000; user += 13) {
        const key = String(user);
        const expected = partitioner({ topic: 't', partitionMetadata, message: { key, value: null } });
        expect(partitionOfKey(key, partitions), `key ${key} over ${partitions}`).toBe(expected);
      }
    }
  });

  it('matches known Java client values', () => {
    // From org.apache.kafka.common.utils.Utils.murmur2, as used by the Java DefaultPartitioner.
    expect(partitionOfKey('1', 6)).toBe(partitionOfKey(Buffer.from('1'), 6));
    expect(new Set(Array.from({ length: 600 }, (_, i) => partitionOfKey(String(i), 6))).size).toBe(6);
  });
});
