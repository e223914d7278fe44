import { describe, expect, it } from 'vitest';
import { Coalescer } from '../../src/consumer/coalescer.ts';

/** A call that stays open until released, recording what each call carried. */
function gatedRun(fail: (items: readonly string[]) => boolean = () => false) {
  const calls: string[][] = [];
  let release: () => void = () => {};
  const run = async (items: readonly string[]) => {
    calls.push([...items]);
    await new Promise<void>((resolve) => (release = resolve));
    if (fail(items)) throw new Error(`refused: ${items.join(',')}`);
  };
  return { calls, run, release: () => release() };
}

const settle = (p: Promise<void>) =>
  p.then(
    () => 'ok',
    (e: Error) => e.message,
  );

describe('Coalescer', () => {
  it('sends the first submission at once and everything queued behind it in one call', async () => {
    const gate = gatedRun();
    const coalescer = new Coalescer({ run: gate.run, itemsMax: 10, isolateFailures: true });
    const first = coalescer.submit('a');
    const rest = ['b', 'c', 'd'].map((x) => coalescer.submit(x));
    expect(gate.calls).toEqual([['a']]);
    gate.release();
    await first;
    await new Promise((r) => setImmediate(r));
    expect(gate.calls).toEqual([['a'], ['b', 'c', 'd']]);
    gate.release();
    await Promise.all(rest);
    expect({ calls: coalescer.calls, submissions: coalescer.submissions }).toEqual({ calls: 2, submissions: 4 });
  });

  it('keeps each call within itemsMax and weightMax, always taking at least one item', async () => {
    const calls: string[][] = [];
    const coalescer = new Coalescer<string>({
      run: async (items) => void calls.push([...items]),
      itemsMax: 2,
      weight: (item) => item.length,
      weightMax: 4,
      isolateFailures: true,
    });
    await Promise.all(['x', 'aaa', 'bb', 'cc', 'd', 'e', 'f', 'toolong'].map((item) => coalescer.submit(item)));
    expect(calls).toEqual([['x'], ['aaa'], ['bb', 'cc'], ['d', 'e'], ['f'], ['toolong']]);
  });

  it('when a merged call fails, tries each item alone: only the bad one is refused', async () => {
    const gate = gatedRun((items) => items.includes('bad'));
    const coalescer = new Coalescer({ run: gate.run, itemsMax: 10, isolateFailures: true });
    const first = settle(coalescer.submit('first'));
    const merged = ['good1', 'bad', 'good2'].map((x) => settle(coalescer.submit(x)));
    gate.release();
    expect(await first).toBe('ok');
    for (let i = 0; i < 4; i += 1) {
      await new Promise((r) => setImmediate(r));
      gate.release();
    }
    expect(await Promise.all(merged)).toEqual(['ok', 'refused: bad', 'ok']);
    expect(gate.calls).toEqual([['first'], ['good1', 'bad', 'good2'], ['good1'], ['bad'], ['good2']]);
  });

  it('without isolation, a failed call refuses every item it carried, and the next call goes on', async () => {
    let fail = true;
    const coalescer = new Coalescer<string>({
      run: async () => {
        if (fail) throw new Error('rebalancing');
      },
      itemsMax: 10,
      isolateFailures: false,
    });
    const outcomes = await Promise.all(['p0', 'p1'].map((x) => settle(coalescer.submit(x))));
    expect(outcomes).toEqual(['rebalancing', 'rebalancing']);
    fail = false;
    expect(await settle(coalescer.submit('p2'))).toBe('ok');
  });
});
