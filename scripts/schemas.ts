/**
 * `npm run schemas`: writes schemas/command.schema.json, schemas/reply.schema.json and
 * schemas/event.schema.json from the zod schemas, for producers and subscribers in other
 * languages. `--check` fails if the files are stale.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { loadConfig } from '../src/config.ts';
import { createCommandSchema } from '../src/commands/schema.ts';
import { balanceEventSchema } from '../src/commands/event-schema.ts';
import { replySchema } from '../src/commands/reply-schema.ts';

export function schemaFiles(): Record<string, string> {
  const commands = createCommandSchema(loadConfig({}, { secrets: 'unused' }).limits);
  const render = (title: string, schema: z.ZodType, io: 'input' | 'output') =>
    `${JSON.stringify({ title, ...z.toJSONSchema(schema, { io, unrepresentable: 'any' }) }, null, 2)}\n`;
  return {
    'schemas/command.schema.json': render('balance-service command (value of the command topic)', commands, 'input'),
    'schemas/reply.schema.json': render('balance-service reply (value of the reply topic)', replySchema, 'output'),
    'schemas/event.schema.json': render(
      'balance-service balance event (value of the events topic)',
      balanceEventSchema,
      'output',
    ),
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [file, text] of Object.entries(schemaFiles())) {
    if (check) {
      const current = await readFile(file, 'utf8').catch(() => '');
      if (current !== text) {
        stale += 1;
        console.error(`${file} is stale: run npm run schemas`);
      }
    } else {
      await writeFile(file, text);
      console.log(`wrote ${file}`);
    }
  }
  if (stale > 0) process.exitCode = 1;
}
