/**
 * Runs a command-line entry point: expected failures (bad configuration, a service that is not
 * there) print one clear line and exit 1 instead of a stack trace.
 */
import { ConfigError } from './config.ts';

export async function runCli(main: () => Promise<void>): Promise<void> {
  try {
    await main();
  } catch (error) {
    process.exitCode = 1;
    if (error instanceof ConfigError) console.error(error.message);
    else if (error instanceof Error && error.name.endsWith('UnavailableError')) console.error(`error: ${error.message}`);
    else console.error(error);
  }
}
