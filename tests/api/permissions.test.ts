import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors.ts';
import { ACTIONS, Permissions, permissionTable, permissionTableMarkdown } from '../../src/api/permissions.ts';
import { ROLES } from '../../src/users/store.ts';

describe('the permission table', () => {
  it('is documented in docs/security.md exactly as the code has it (default USER_ACTIONS)', async () => {
    const doc = await readFile(new URL('../../docs/security.md', import.meta.url), 'utf8');
    expect(doc).toContain(permissionTableMarkdown(['transfer']));
  });

  it("refuses every action outside a principal's grant, for every role, and allows the granted one as the role does", () => {
    const permissions = new Permissions(['transfer']);
    const table = permissionTable(['transfer']);
    const outcome = (run: () => void) => {
      try {
        run();
        return 'allowed';
      } catch (error) {
        if (error instanceof ApiError && error.status === 403) return 'refused';
        throw error;
      }
    };
    for (const role of ROLES)
      for (const granted of ACTIONS)
        for (const action of ACTIONS) {
          const principal = { userId: 1, role, services: null, actions: [granted] };
          const expected = action === granted && table[role][action] !== 'none' ? 'allowed' : 'refused';
          expect([role, granted, action, outcome(() => permissions.require(principal, action, { userId: 1 }))]).toEqual(
            [role, granted, action, expected],
          );
        }
  });

  it('leaves a principal with no grant list (every account made before grants existed) to its role', () => {
    const permissions = new Permissions(['transfer']);
    for (const action of ACTIONS)
      expect(() =>
        permissions.require({ userId: 1, role: 'service', services: null, actions: null }, action, { userId: 2 }),
      ).not.toThrow();
  });
});
