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
  watchParent(log, () => handle('SIGHUP'));
}

/** How often a process started by npm checks that npm is still there. */
const PARENT_POLL_MS = 1_000;

/**
 * npm does not always pass SIGTERM on to the script it runs; when npm itself is gone, we are
 * re-parented. Treat that as a shutdown signal, so `kill <npm pid>` still stops everything,
 * the local broker included, instead of leaving it running unowned.
 */
function watchParent(log: Logger, shutdown: () => void): void {
  if (!process.env.npm_lifecycle_event) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    log.warn({ parent }, 'the npm process that started us is gone');
    shutdown();
  }, PARENT_POLL_MS);
  timer.unref();
}
