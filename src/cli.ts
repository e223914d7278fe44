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
 * is a smoke test of a build that needs no services; `usage: null` leaves `--help` to `main`
 * (a wrapper whose arguments belong to another program).
 */
export async function runCli(
  main: () => Promise<void>,
  usage: string | null = 'Configuration comes from the environment: see the README.',
): Promise<void> {
  if (usage !== null && process.argv.slice(2).some((arg) => arg === '--help' || arg === '-h')) {
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

/** A small `--name value` parser for the operator tools; unknown flags are an error. */
export function parseArgs(
  argv: readonly string[],
  known: { values: readonly string[]; flags: readonly string[] },
): { values: Map<string, string>; flags: Set<string>; positional: string[] } {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const name = arg.slice(2);
    if (known.flags.includes(name)) flags.add(name);
    else if (known.values.includes(name)) {
      const value = argv[i + 1];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`);
      values.set(name, value);
      i += 1;
    } else throw new UsageError(`unknown option --${name}`);
  }
  return { values, flags, positional };
}
