import { describe, expect, it } from 'vitest';
import { OffsetCommitter, type TopicPartitionOffset } from '../../src/consumer/offset-committer.ts';
import { createLogger } from '../../src/log.ts';

const log = createLogger({ level: 'silent', name: 'test' });
const at = (partition: number, offset: number, topic = 'commands'): TopicPartitionOffset => ({
  topic,
  partition,
  offset: String(offset),
});

/** A committer whose requests are recorded; `failNext` makes the next request fail. */
function committer(intervalMs = 60_000) {
  const requests: TopicPartitionOffset[][] = [];
  let failNext = false;
  const offsets = new OffsetCommitter(
    async (sent) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      if (failNext) {
        failNext = false;
        throw new Error('REBALANCE_IN_PROGRESS');
      }
      requests.push([...sent].sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition));
    },
    intervalMs,
    log,
  );
  return { offsets, requests, fail: () => (failNext = true) };
}

describe('OffsetCommitter', () => {
  it('commits the highest offset of every partition in one request, and nothing when nothing moved', async () => {
    const { offsets, requests } = committer();
    offsets.record(at(0, 10));
    offsets.record(at(1, 5));
    offsets.record(at(0, 30));
    offsets.record(at(0, 20)); // a lane never goes back; if it did, the higher offset stays
    await offsets.flush();
    await offsets.flush();
    expect(requests).toEqual([[at(0, 30), at(1, 5)]]);
  });

  it('sends a failed commit again, unless a later offset of the partition came meanwhile', async () => {
    const { offsets, requests, fail } = committer();
    offsets.record(at(0, 10));
    offsets.record(at(1, 10));
    fail();
    const failed = offsets.flush();
    await new Promise((resolve) => setTimeout(resolve, 1)); // the failing request is in flight
    offsets.record(at(1, 15));
    await failed;
    await offsets.flush();
    expect(requests).toEqual([[at(0, 10), at(1, 15)]]);
  });

  it('never commits for a partition another consumer owns now', async () => {
    const { offsets, requests } = committer();
    offsets.record(at(0, 10));
    offsets.record(at(1, 10));
    offsets.record(at(1, 10, 'other'));
    offsets.retain('commands', new Set([1]));
    offsets.record(at(0, 20)); // a lane that finished after the rebalance
    await offsets.stop();
    expect(requests).toEqual([[at(1, 10), at(1, 10, 'other')]]);
  });

  it('commits on its timer within the interval, and what is left when it stops', async () => {
    const { offsets, requests } = committer(20);
    offsets.start();
    offsets.record(at(0, 1));
    const deadline = Date.now() + 2_000;
    while (requests.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    expect(requests).toEqual([[at(0, 1)]]);
    offsets.record(at(0, 2));
    await offsets.stop();
    expect(requests).toEqual([[at(0, 1)], [at(0, 2)]]);
  });
});
