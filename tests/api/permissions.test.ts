import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { permissionTableMarkdown } from '../../src/api/permissions.ts';

describe('the permission table', () => {
  it('is documented in docs/security.md exactly as the code has it (default USER_ACTIONS)', async () => {
    const doc = await readFile(new URL('../../docs/security.md', import.meta.url), 'utf8');
    expect(doc).toContain(permissionTableMarkdown(['transfer']));
  });
});
