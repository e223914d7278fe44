import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { generatedSections, withSection } from '../scripts/docs.ts';
import { COMMAND_TYPES } from '../src/commands/command-types.ts';

describe('the docs derived from the code', () => {
  it.each(generatedSections().map((s) => [`${s.file}: ${s.name}`, s] as const))(
    '%s is as the code has it (run npm run docs if not)',
    async (_name, section) => {
      const text = await readFile(new URL(`../${section.file}`, import.meta.url), 'utf8');
      expect(withSection(text, section.name, section.text)).toBe(text);
    },
  );

  it('lists every command type of the catalog in docs/commands.md, and no other', async () => {
    const text = await readFile(new URL('../docs/commands.md', import.meta.url), 'utf8');
    const rows = [...text.matchAll(/^\| `([a-z_]+)` \| /gm)].map((m) => m[1]);
    expect(rows.filter((type) => (COMMAND_TYPES as readonly string[]).includes(type!))).toEqual(COMMAND_TYPES);
  });
});
