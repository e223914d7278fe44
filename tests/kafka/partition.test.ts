import { describe, expect, it } from 'vitest';
import { javaCompatiblePartitioner } from '../../src/kafka/client.ts';
import { murmur2, partitionOfKey } from '../../src/kafka/partition.ts';

describe('partitionOfKey', () => {
  it("matches the partition kafkajs's default (Java-compatible) partitioner picks", () => {
    const partitioner = javaCompatiblePartitioner();
    for (const partitions of [1, 3, 6, 12, 64]) {
      const partitionMetadata = Array.from({ length: partitions }, (_, partitionId) => ({
        partitionId,
        leader: 1,
        replicas: [1],
        isr: [1],
        partitionErrorCode: 0,
      }));
      for (let user = 1; user < 2_000; user += 13) {
        const key = String(user);
        const expected = partitioner({ topic: 't', partitionMetadata, message: { key, value: null } });
        expect(partitionOfKey(key, partitions), `key ${key} over ${partitions}`).toBe(expected);
      }
    }
  });

  it("matches the golden vectors of Kafka's own UtilsTest.testMurmur2", () => {
    const vectors: Array<[string, number]> = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [input, expected] of vectors) expect(murmur2(Buffer.from(input)), input).toBe(expected);
    // The Java DefaultPartitioner: toPositive(murmur2(key)) % partitions.
    expect(partitionOfKey('foobar', 6)).toBe((-790332482 & 0x7fffffff) % 6);
  });
});
