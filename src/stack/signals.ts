import type { Logger } from '../log.ts';

/**
 * Calls `shutdown` once on the first SIGINT or SIGTERM. A second signal while shutting down
 * exits at once, for the user who presses Ctrl-C twice.
 */
export function onShutdownSignal(log: Logger, shutdown: () => void | Promise<void>): void {
  let stopping = false;
  const handle = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    void Promise.resolve(shutdown()).catch((error: unknown) => {
      log.error({ err: error }, 'shutdown failed');
      process.exitCode = 1;
    });
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
}
