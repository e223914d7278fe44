/**
 * The folders of src/ form layers, and a module imports only from layers below its own: no folder
 * depends on one above it, and no two depend on each other. Entry points (`start.ts`, `main.ts`,
 * `*-cli.ts`) wire everything together and are the exception.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

/** Bottom first. A root file is a unit of its own; `config.ts` belongs with `config/`. */
const LAYERS: readonly (readonly string[])[] = [
  ['errors.ts', 'log.ts'],
  ['cli.ts', 'retry.ts', 'periodic.ts', 'metrics.ts', 'signals.ts'],
  ['commands'],
  ['config'],
  ['kafka', 'db', 'fx'],
  ['failures.ts', 'health.ts', 'signing-key-watch.ts'],
  ['ledger'],
  ['client', 'users'],
  ['consumer', 'api'],
  ['stack'],
  ['tools'],
];

function unitOf(file: string): string {
  const [first] = path.relative(SRC, file).split(path.sep);
  return first === 'config.ts' ? 'config' : first!;
}

function isEntryPoint(file: string): boolean {
  const name = path.basename(file);
  return name === 'start.ts' || name === 'main.ts' || name.endsWith('-cli.ts');
}

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) => (e.isDirectory() ? sourceFiles(path.join(dir, e.name)) : [path.join(dir, e.name)])),
  );
  return nested.flat().filter((file) => file.endsWith('.ts'));
}

describe('the layers of src/', () => {
  it('places every folder and root file in a layer', async () => {
    const units = new Set((await sourceFiles(SRC)).filter((f) => !isEntryPoint(f)).map(unitOf));
    const placed = new Set(LAYERS.flat());
    expect([...units].filter((unit) => !placed.has(unit)).sort()).toEqual([]);
  });

  it('imports only from lower layers, outside the entry points', async () => {
    const layer = new Map(LAYERS.flatMap((units, i) => units.map((unit) => [unit, i] as const)));
    const upward: string[] = [];
    for (const file of await sourceFiles(SRC)) {
      if (isEntryPoint(file)) continue;
      const from = unitOf(file);
      for (const match of (await readFile(file, 'utf8')).matchAll(/from '(\.[^']+)'/g)) {
        const to = unitOf(path.resolve(path.dirname(file), match[1]!));
        if (to !== from && (layer.get(to) ?? 99) >= (layer.get(from) ?? -1))
          upward.push(`${path.relative(SRC, file)} -> ${to}`);
      }
    }
    expect(upward).toEqual([]);
  });
});
