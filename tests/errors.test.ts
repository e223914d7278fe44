import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { API_ERRORS, ApiError } from '../src/errors.ts';
import { RESULT_CODES } from '../src/ledger/core.ts';
import { DEAD_LETTER_CODES } from '../src/consumer/dead-letter.ts';

/** The `code | status` rows of a Markdown table. */
async function documentedCodes(file: string): Promise<Map<string, string>> {
  const text = await readFile(new URL(`../docs/${file}`, import.meta.url), 'utf8');
  const rows = [...text.matchAll(/^\| `([a-z_]+)` \| ([a-z0-9]+) \|/gm)];
  return new Map(rows.map((row) => [row[1]!, row[2]!]));
}

describe('the HTTP error registry', () => {
  it('documents every code with its status in docs/errors.md, and nothing else', async () => {
    const documented = await documentedCodes('errors.md');
    expect([...documented.keys()].sort()).toEqual(Object.keys(API_ERRORS).sort());
    for (const [code, spec] of Object.entries(API_ERRORS)) expect(documented.get(code), code).toBe(String(spec.status));
  });

  it('uses only 4xx for what a client can cause, and 5xx for the service', () => {
    for (const [code, spec] of Object.entries(API_ERRORS)) {
      const serverSide = code === 'internal_error' || code === 'service_unavailable';
      expect(spec.status >= 500, code).toBe(serverSide);
    }
  });

  it('builds an ApiError with the registry status and default message', () => {
    const error = new ApiError('forbidden');
    expect(error.status).toBe(403);
    expect(error.message).toBe(API_ERRORS.forbidden.message);
  });
});

describe('the command contract documentation', () => {
  it('lists every result code of the ledger', async () => {
    const documented = await documentedCodes('commands.md');
    for (const code of Object.keys(RESULT_CODES)) expect(documented.has(code), code).toBe(true);
  });

  it('names every dead-letter code', async () => {
    const text = await readFile(new URL('../docs/commands.md', import.meta.url), 'utf8');
    for (const code of Object.keys(DEAD_LETTER_CODES)) expect(text, code).toContain(`\`${code}\``);
  });
});
