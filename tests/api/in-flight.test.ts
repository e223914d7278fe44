import { describe, expect, it } from 'vitest';
import { InFlightHandlers } from '../../src/api/in-flight.ts';

describe('InFlightHandlers', () => {
  it('counts running work and reports drained when the last one ends', async () => {
    const handlers = new InFlightHandlers();
    let finish!: () => void;
    const work = handlers.track(() => new Promise<string>((resolve) => (finish = () => resolve('done'))));
    expect(handlers.count).toBe(1);
    const drained = handlers.drained(5_000);
    finish();
    expect(await work).toBe('done');
    expect(await drained).toBe(true);
    expect(handlers.count).toBe(0);
  });

  it('gives up after the wait, and counts failed work as finished', async () => {
    const handlers = new InFlightHandlers();
    const stuck = handlers.track(() => new Promise<void>(() => {}));
    void stuck;
    expect(await handlers.drained(20)).toBe(false);
    await expect(handlers.track(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(handlers.count).toBe(1);
  });

  it('is drained at once when nothing runs', async () => {
    expect(await new InFlightHandlers().drained(0)).toBe(true);
  });
});
