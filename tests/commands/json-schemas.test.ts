import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { schemaFiles } from '../../scripts/schemas.ts';

describe('the committed JSON Schemas', () => {
  it.each(Object.entries(schemaFiles()))(
    '%s matches the zod schemas (run npm run schemas if not)',
    async (file, expected) => {
      expect(await readFile(new URL(`../../${file}`, import.meta.url), 'utf8')).toBe(expected);
    },
  );
});
