import { describe, expect, it } from 'vitest';
import { bucketOf, summarize } from '../../bench/profile-summary.ts';

describe('profile summary', () => {
  it('puts self time in the package, src folder, runtime or V8 bucket its code lives in', () => {
    const frame = (url: string, functionName = 'f') => ({ url, functionName });
    expect(bucketOf(frame('file:///p/node_modules/kafkajs/src/producer/index.js'))).toBe('kafkajs');
    expect(bucketOf(frame('file:///p/node_modules/@fastify/ajv-compiler/index.js'))).toBe('@fastify/ajv-compiler');
    expect(bucketOf(frame('file:///p/node_modules/a/node_modules/pg/lib/client.js'))).toBe('pg');
    expect(bucketOf(frame('file:///work/p/src/consumer/pipeline.ts'))).toBe('src/consumer');
    expect(bucketOf(frame('file:///work/p/src/config.ts'))).toBe('src/config.ts');
    expect(bucketOf(frame('node:internal/streams/readable'))).toBe('node (runtime)');
    expect(bucketOf(frame('', '(garbage collector)'))).toBe('(garbage collector)');
    expect(bucketOf(frame('', 'parse'))).toBe('(V8 builtins)');
  });

  it('sums the time deltas of each sample into its bucket, leaves idle out, and charges runtime time to its caller', () => {
    const { self, byCaller } = summarize({
      nodes: [
        { id: 1, callFrame: { url: '', functionName: '(idle)' } },
        { id: 2, callFrame: { url: 'file:///x/node_modules/pg/lib/a.js', functionName: 'q' }, children: [4] },
        { id: 3, callFrame: { url: 'file:///x/src/ledger/core.ts', functionName: 'decide' } },
        { id: 4, callFrame: { url: 'node:net', functionName: 'write' }, children: [5] },
        { id: 5, callFrame: { url: '', functionName: 'writev' } },
      ],
      samples: [1, 2, 3, 2, 1, 5, 4],
      timeDeltas: [5000, 1000, 2000, 3000, 9000, 7000, 1000],
    });
    expect(Object.fromEntries(self)).toEqual({ pg: 4, 'src/ledger': 2, '(V8 builtins)': 7, 'node (runtime)': 1 });
    expect(Object.fromEntries(byCaller)).toEqual({ pg: 12, 'src/ledger': 2 });
  });
});
