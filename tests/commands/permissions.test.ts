import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../src/errors.ts';
import { ACTIONS, Permissions, permissionTable, permissionTableMarkdown } from '../../src/commands/permissions.ts';
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
    const service = { userId: 1, role: 'service', services: null, actions: null } as const;
    for (const action of ACTIONS.filter((a) => a !== 'freeze' && a !== 'unfreeze'))
      expect(() => permissions.require(service, action, { userId: 2 })).not.toThrow();
  });

  it('lets only admins freeze and unfreeze, and never users or services, whatever USER_ACTIONS says', () => {
    const permissions = new Permissions(['deposit', 'withdraw', 'reserve', 'capture', 'release', 'transfer']);
    for (const action of ['freeze', 'unfreeze', 'refund'] as const) {
      expect(() => permissions.require({ userId: 2, role: 'user', services: null }, action, { userId: 2 })).toThrow(
        /may not/,
      );
      expect(() =>
        permissions.require({ userId: 1, role: 'admin', services: null }, action, { userId: 2 }),
      ).not.toThrow();
    }
    for (const action of ['freeze', 'unfreeze'] as const)
      expect(() => permissions.require({ userId: 1, role: 'service', services: null }, action, { userId: 2 })).toThrow(
        /may not/,
      );
  });
});
