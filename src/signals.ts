import type { Logger } from './log.ts';

/**
 * Calls `shutdown` once, on the first SIGINT, SIGTERM or SIGHUP, or when the npm process that
 * started us is gone. A second SIGINT or SIGTERM while shutting down (the user who presses
 * Ctrl-C twice) exits at once, after `beforeForcedExit` has signalled what must not outlive us
 * (the local broker and PostgreSQL, which run in process groups of their own). npm going away
 * while we shut down is not a second signal: a SIGTERM to the process group reaches npm too, and
 * npm exits at once; the stop in progress goes on, and stops the broker and PostgreSQL itself.
 */
export function onShutdownSignal(
  log: Logger,
  shutdown: () => void | Promise<void>,
  beforeForcedExit: () => void = () => {},
): void {
  let stopping = false;
  const begin = (reason: Record<string, unknown>) => {
    stopping = true;
    log.info(reason, 'shutting down');
    void Promise.resolve(shutdown()).catch((error: unknown) => {
      log.error({ err: error }, 'shutdown failed');
      process.exitCode = 1;
    });
  };
  const handle = (signal: NodeJS.Signals) => {
    if (!stopping) return begin({ signal });
    if (signal === 'SIGHUP') return;
    log.warn({ signal }, 'second signal: exiting now');
    beforeForcedExit();
    process.exit(130);
  };
  process.on('SIGINT', handle);
  process.on('SIGTERM', handle);
  process.on('SIGHUP', handle);
  watchParent(log, () => {
    if (stopping) log.info('the npm process that started us is gone; the stop in progress goes on');
    else begin({ reason: 'the npm process that started us is gone' });
  });
}

/** How often a process started by npm checks that npm is still there. */
const PARENT_POLL_MS = 1_000;

/**
 * npm does not always pass SIGTERM on to the script it runs; when npm itself is gone, we are
 * re-parented. Treat that as a shutdown, so `kill <npm pid>` still stops everything, the local
 * broker included, instead of leaving it running unowned.
 */
function watchParent(log: Logger, gone: () => void): void {
  if (!process.env.npm_lifecycle_event) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    log.debug({ parent }, 'parent process changed');
    gone();
  }, PARENT_POLL_MS);
  timer.unref();
}
