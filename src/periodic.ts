/**
 * A task that runs every `intervalMs` until stopped, one run at a time, for housekeeping that
 * must happen by itself (retention). A failed run is logged and tried again at the next tick;
 * a stop waits for the run in progress.
 */
import type { Logger } from './log.ts';

export class PeriodicTask {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly run: () => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  private tick(): void {
    this.running = this.running.then(() =>
      this.run().then(
        () => undefined,
        (error: unknown) =>
          this.log.warn({ err: error, task: this.name }, 'a housekeeping run failed; it runs again later'),
      ),
    );
  }
}
