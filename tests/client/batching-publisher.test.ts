import { describe, expect, it } from 'vitest';
import { BatchingPublisher, partsOfBytes } from '../../src/client/batching-publisher.ts';

function fakeProducer(fail = false) {
  const requests: string[][] = [];
  return {
    requests,
    producer: {
      send: async ({ messages }: { messages: Array<{ value: string }> }) => {
        requests.push(messages.map((m) => m.value));
        await new Promise((resolve) => setTimeout(resolve, 5));
        if (fail) throw new Error('broker down');
      },
    },
  };
}

describe('BatchingPublisher', () => {
  it('sends messages queued while a request is in flight together, in order', async () => {
    const { producer, requests } = fakeProducer();
    const publisher = new BatchingPublisher(producer as never, 't', 100, 1_000);
    await Promise.all(Array.from({ length: 10 }, (_, i) => publisher.send({ key: 'k', value: String(i) })));
    expect(requests).toEqual([['0'], ['1', '2', '3', '4', '5', '6', '7', '8', '9']]);
  });

  it('splits at the batch limit', async () => {
    const { producer, requests } = fakeProducer();
    const publisher = new BatchingPublisher(producer as never, 't', 3, 1_000);
    await Promise.all(Array.from({ length: 8 }, (_, i) => publisher.send({ key: 'k', value: String(i) })));
    expect(requests.map((r) => r.length)).toEqual([1, 3, 3, 1]);
  });

  it('rejects every message of a failed request, and refuses past the queue limit', async () => {
    const { producer } = fakeProducer(true);
    const publisher = new BatchingPublisher(producer as never, 't', 100, 1);
    const sends = [publisher.send({ key: 'k', value: 'a' }), publisher.send({ key: 'k', value: 'b' })];
    await expect(publisher.send({ key: 'k', value: 'c' })).rejects.toThrow(/more than 1/);
    for (const send of sends) await expect(send).rejects.toThrow('broker down');
  });

  it('with a linger, sends a burst that arrives within it as one request', async () => {
    const { producer, requests } = fakeProducer();
    const publisher = new BatchingPublisher(producer as never, 't', 100, 1_000, 20);
    const sends = [publisher.send({ key: 'k', value: '0' })];
    await new Promise((resolve) => setTimeout(resolve, 5));
    sends.push(...Array.from({ length: 4 }, (_, i) => publisher.send({ key: 'k', value: String(i + 1) })));
    await Promise.all(sends);
    expect(requests).toEqual([['0', '1', '2', '3', '4']]);
  });

  it('with a linger, sends a lone message at once when nobody else is busy', async () => {
    const { producer, requests } = fakeProducer();
    const publisher = new BatchingPublisher(producer as never, 't', 100, 1_000, 60_000, () => false);
    const sent = publisher.send({ key: 'k', value: 'alone' });
    // Handed to the producer in the same tick: no linger at all.
    expect(requests).toEqual([['alone']]);
    await sent;
  });

  it('with a linger, waits for company while others are busy', async () => {
    const { producer, requests } = fakeProducer();
    const publisher = new BatchingPublisher(producer as never, 't', 100, 1_000, 20, () => true);
    const sends = [publisher.send({ key: 'k', value: '0' })];
    expect(requests).toEqual([]);
    sends.push(publisher.send({ key: 'k', value: '1' }));
    await Promise.all(sends);
    expect(requests).toEqual([['0', '1']]);
  });

  it('with a linger, waits for company after a request that carried several, even with nobody busy', async () => {
    const { producer, requests } = fakeProducer();
    const publisher = new BatchingPublisher(producer as never, 't', 100, 1_000, 50, () => false);
    await Promise.all(['0', '1', '2'].map((value) => publisher.send({ key: 'k', value })));
    // A burst is under way (clients answered together come back together): the next message
    // lingers, and the one after it shares its request.
    await Promise.all([publisher.send({ key: 'k', value: '3' }), publisher.send({ key: 'k', value: '4' })]);
    // After a request of one, a message leaves at once again.
    await publisher.send({ key: 'k', value: '5' });
    const sent = publisher.send({ key: 'k', value: '6' });
    expect(requests).toEqual([['0'], ['1', '2'], ['3', '4'], ['5'], ['6']]);
    await sent;
  });

  it('with a linger, counts a burst split at the batch limit as a burst', async () => {
    const { producer, requests } = fakeProducer();
    const publisher = new BatchingPublisher(producer as never, 't', 2, 1_000, 50, () => false);
    await Promise.all(['0', '1', '2', '3'].map((value) => publisher.send({ key: 'k', value })));
    await Promise.all([publisher.send({ key: 'k', value: '4' }), publisher.send({ key: 'k', value: '5' })]);
    expect(requests).toEqual([['0'], ['1', '2'], ['3'], ['4', '5']]);
  });

  it('with a linger, does not wait once a full batch is queued', async () => {
    const { producer, requests } = fakeProducer();
    const publisher = new BatchingPublisher(producer as never, 't', 3, 1_000, 60_000);
    const started = Date.now();
    await Promise.all(Array.from({ length: 3 }, (_, i) => publisher.send({ key: 'k', value: String(i) })));
    expect(requests).toEqual([['0', '1', '2']]);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});

describe('partsOfBytes', () => {
  const message = (bytes: number) => ({ key: 'k', value: 'v'.repeat(bytes - 1) });

  it('keeps every message, in order, in runs of at most the limit (a larger message alone)', () => {
    const messages = [message(400), message(400), message(400), message(1_000), message(100)];
    const parts = partsOfBytes(messages, 900);
    expect(parts.map((p) => p.map((m) => m.value.length + 1))).toEqual([[400, 400], [400], [1_000], [100]]);
    expect(parts.flat()).toEqual(messages);
  });

  it('sends an ordinary bulk in one part', () => {
    expect(
      partsOfBytes(
        Array.from({ length: 1_000 }, () => message(300)),
        900_000,
      ),
    ).toHaveLength(1);
  });
});
