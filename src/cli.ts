/**
 * Runs a command-line entry point: expected failures (bad configuration, a service that is not
 * there, a mistake in the call) print one clear line and exit 1 instead of a stack trace.
 */

/**
 * An error meant for the operator running a command: its message says what to do, and no stack
 * trace is printed. Configuration problems, usage mistakes and unreachable dependencies extend it.
 */
export class OperatorError extends Error {
  override readonly name: string = 'OperatorError';
}

/** A mistake in how a command was called (a missing option, a bad value): one line, no stack. */
export class UsageError extends OperatorError {
  override readonly name = 'UsageError';
}

/**
 * Runs `main`. With `--help` (or `-h`) it prints `usage` instead, so `node dist/<entry>.js --help`
 * is a smoke test of a build that needs no services.
 */
export async function runCli(
  main: () => Promise<void>,
  usage = 'Configuration comes from the environment: see the README.',
): Promise<void> {
  if (process.argv.slice(2).some((arg) => arg === '--help' || arg === '-h')) {
    console.log(usage);
    return;
  }
  try {
    await main();
  } catch (error) {
    process.exitCode = 1;
    if (error instanceof OperatorError)
      console.error(error.name === 'ConfigError' ? error.message : `error: ${error.message}`);
    else console.error(error);
  }
}
