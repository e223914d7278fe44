import { readdir, readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { generatedSections, withSection } from '../../scripts/docs.ts';
import { COMMAND_TYPES } from '../../src/commands/command-types.ts';

describe('the docs derived from the code', () => {
  it.each(generatedSections().map((s) => [`${s.file}: ${s.name}`, s] as const))(
    '%s is as the code has it (run npm run docs if not)',
    async (_name, section) => {
      const text = await readFile(new URL(`../../${section.file}`, import.meta.url), 'utf8');
      expect(withSection(text, section.name, section.text)).toBe(text);
    },
  );

  it('lists every command type of the catalog in docs/commands.md, and no other', async () => {
    const text = await readFile(new URL('../../docs/commands.md', import.meta.url), 'utf8');
    const rows = [...text.matchAll(/^\| `([a-z_]+)` \| /gm)].map((m) => m[1]);
    expect(rows.filter((type) => (COMMAND_TYPES as readonly string[]).includes(type!))).toEqual(COMMAND_TYPES);
  });
});

describe('the npm scripts the docs name', () => {
  const scripts = async () =>
    Object.keys(JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')).scripts);
  const named = (text: string) =>
    new Set(
      [...text.matchAll(/\bnpm (?:run(?: -s| --silent)? ([a-z][a-z0-9:-]*)|(start|test)\b)/g)].map(
        (m) => (m[1] ?? m[2])!,
      ),
    );
  const docs = async () => {
    const files = ['README.md', ...(await readdir(new URL('../../docs/', import.meta.url))).map((f) => `docs/${f}`)];
    return Promise.all(
      files.map(async (file) => ({ file, text: await readFile(new URL(`../../${file}`, import.meta.url), 'utf8') })),
    );
  };

  it('are every one of them in the README (the benchmarks in docs/performance.md)', async () => {
    const readme = named(await readFile(new URL('../../README.md', import.meta.url), 'utf8'));
    const performance = named(await readFile(new URL('../../docs/performance.md', import.meta.url), 'utf8'));
    const missing = (await scripts()).filter((s) => !readme.has(s) && !(s.startsWith('bench:') && performance.has(s)));
    expect(missing).toEqual([]);
  });

  it('exist, wherever the docs name them', async () => {
    const known = new Set(await scripts());
    const unknown = (await docs()).flatMap(({ file, text }) =>
      [...named(text)].filter((s) => !known.has(s)).map((s) => `${file}: npm run ${s}`),
    );
    expect(unknown).toEqual([]);
  });
});
