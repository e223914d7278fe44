/**
 * Runs a command-line entry point: expected failures (bad configuration, a service that is not
 * there) print one clear line and exit 1 instead of a stack trace.
 */
import { ConfigError } from './config.ts';

/** A mistake in how a command was called (a missing option, a bad value): one line, no stack. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    process.exitCode = 1;
    if (error instanceof ConfigError) console.error(error.message);
    else if (error instanceof UsageError) console.error(`error: ${error.message}`);
    else if (error instanceof Error && error.name.endsWith('UnavailableError')) console.error(`error: ${error.message}`);
    else console.error(error);
  }
}
