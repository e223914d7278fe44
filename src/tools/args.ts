/** A small `--name value` parser for the operator tools; unknown flags are an error. */
import { UsageError } from '../cli.ts';

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
