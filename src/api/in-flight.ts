/**
 * Counts route handlers still running. A client that hangs up does not stop its handler, and
 * Fastify's close() resolves once the sockets are gone, so without this a shutdown could end
 * the database pool under a handler that is still waiting for its reply.
 */
export class InFlightHandlers {
  private running = 0;
  private readonly idle = new Set<() => void>();

  get count(): number {
    return this.running;
  }

  async track<T>(work: () => Promise<T>): Promise<T> {
    this.running += 1;
    try {
      return await work();
    } finally {
      this.running -= 1;
      if (this.running === 0) for (const resolve of this.idle) resolve();
    }
  }

  /** Resolves true when no handler runs, or false after `waitMs`. */
  drained(waitMs: number): Promise<boolean> {
    if (this.running === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (result: boolean) => {
        clearTimeout(timer);
        this.idle.delete(onIdle);
        resolve(result);
      };
      const onIdle = () => done(true);
      const timer = setTimeout(() => done(false), waitMs);
      this.idle.add(onIdle);
    });
  }
}
