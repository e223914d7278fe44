/**
 * `npm run docs`: writes the parts of docs/ that are derived from the code, between
 * `<!-- generated: <name> -->` and `<!-- end: <name> -->` markers: the command types (from the
 * catalog), the permission table, the configuration (from the settings tree). `--check` fails if any is stale; a test
 * runs the same check, so a doc cannot drift from its one home in the code.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { permissionTableMarkdown } from '../src/commands/permissions.ts';
import { COMMAND_CATALOG } from '../src/commands/catalog.ts';
import { COMMAND_TYPES } from '../src/commands/command-types.ts';
import { configurationMarkdown } from '../src/config.ts';

/** docs/commands.md's table of command types: one row per catalog entry, in catalog order. */
export function commandTypesTable(): string {
  const rows = COMMAND_TYPES.map((type) => {
    const { fields, effect, rejections } = COMMAND_CATALOG[type].docs;
    return `| \`${type}\` | ${fields} | ${effect} | ${rejections} |`;
  });
  return ['| type | fields | effect | rejected with |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

/** Each generated section: its file, its name, and its text. */
export function generatedSections(): Array<{ file: string; name: string; text: string }> {
  return [
    { file: 'docs/commands.md', name: 'command types', text: commandTypesTable() },
    { file: 'docs/security.md', name: 'permissions', text: permissionTableMarkdown(['transfer']) },
    { file: 'docs/configuration.md', name: 'configuration', text: configurationMarkdown() },
  ];
}

/** `text` with the section `name` (written by `command`) replaced by `body`; throws if the markers are missing. */
export function withSection(text: string, name: string, body: string, command = 'npm run docs'): string {
  const begin = `<!-- generated: ${name} (${command}) -->`;
  const end = `<!-- end: ${name} -->`;
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`no generated section "${name}": add ${begin} ... ${end}`);
  return `${text.slice(0, from + begin.length)}\n${body}\n${text.slice(to)}`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const { file, name, text } of generatedSections()) {
    const current = await readFile(file, 'utf8');
    const next = withSection(current, name, text);
    if (next === current) continue;
    if (check) {
      stale += 1;
      console.error(`${file}: the section "${name}" is stale: run npm run docs`);
    } else {
      await writeFile(file, next);
      console.log(`wrote ${file} (${name})`);
    }
  }
  if (stale > 0) process.exitCode = 1;
}
