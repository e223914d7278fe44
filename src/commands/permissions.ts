/**
 * Who may do what: one table, used by every route and rendered into docs/security.md (a test
 * keeps the two in step). Money entering the ledger, orders and withdrawals are the job of
 * `service` principals (billing, the order service); an end user (`user`) moves only their own
 * money out, by transfer, unless USER_ACTIONS widens that.
 */
import { COMMAND_CATALOG } from './catalog.ts';
import { CLIENT_COMMAND_TYPES, type ClientCommandType, type GrantableCommandType } from './command-types.ts';
import { ApiError } from '../errors.ts';

/** Who a principal is: an end user, a service (billing, the order service), or an admin. */
export const ROLES = ['user', 'service', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** The commands clients may send, from the catalog; settles and expires are the consumer's own. */
export type ClientCommand = ClientCommandType;
/** The money a user may move on their own account, if USER_ACTIONS lists it. */
export type MoneyCommand = GrantableCommandType;

export type Action = ClientCommand | 'read_account' | 'read_revenue';
export const ACTIONS: readonly Action[] = [...CLIENT_COMMAND_TYPES, 'read_account', 'read_revenue'];

/**
 * How far a role reaches for an action:
 *   none      never;
 *   own       only the caller's own account (a user id equal to the caller's);
 *   services  any account, but only for the services the principal is bound to, if it is bound;
 *   any       any account.
 */
export type Reach = 'none' | 'own' | 'services' | 'any';

export interface Principal {
  readonly userId: number;
  readonly role: Role;
  /** The services a `service` principal is bound to; null when it may act for any service. */
  readonly services: readonly number[] | null;
  /**
   * The actions the principal is granted, within what its role allows (least privilege for
   * service accounts: billing deposits, the order service reserves, captures and releases);
   * null for everything the role allows. Unknown names grant nothing.
   */
  readonly actions?: readonly string[] | null;
}

/**
 * The permission table for a deployment: `userActions` is USER_ACTIONS. A command's reach for
 * each role is its catalog entry's `access`; reads are the two below. Admins reach everything.
 */
export function permissionTable(userActions: readonly MoneyCommand[]): Record<Role, Record<Action, Reach>> {
  const granted = new Set<string>(userActions);
  const user = {} as Record<Action, Reach>;
  const service = {} as Record<Action, Reach>;
  for (const type of CLIENT_COMMAND_TYPES) {
    const access = COMMAND_CATALOG[type].access;
    user[type] = access.user === 'own' || (access.user === 'grantable' && granted.has(type)) ? 'own' : 'none';
    service[type] = access.service;
  }
  user.read_account = 'own';
  user.read_revenue = 'none';
  service.read_account = 'any';
  service.read_revenue = 'services';
  const admin = Object.fromEntries(ACTIONS.map((action) => [action, 'any'])) as Record<Action, Reach>;
  return { user, service, admin };
}

export class Permissions {
  readonly table: Record<Role, Record<Action, Reach>>;
  constructor(userActions: readonly MoneyCommand[]) {
    this.table = permissionTable(userActions);
  }

  /** Throws 403 `forbidden` unless `principal` may do `action` on `target`. */
  require(principal: Principal, action: Action, target: { userId?: number; serviceId?: number } = {}): void {
    const reach = this.table[principal.role][action];
    if (reach === 'none') throw new ApiError('forbidden', `A ${principal.role} account may not ${describe(action)}.`);
    if (principal.actions && !principal.actions.includes(action))
      throw new ApiError(
        'forbidden',
        `This account is not granted the ${action} action (it may ${principal.actions.join(', ')}).`,
      );
    if (reach === 'own' && target.userId !== undefined && target.userId !== principal.userId) {
      throw new ApiError('forbidden', `A ${principal.role} account may ${describe(action)} only on its own account.`);
    }
    if (reach === 'services' && target.serviceId !== undefined && !this.servesFor(principal, target.serviceId)) {
      throw new ApiError('forbidden', `This account is not bound to service ${target.serviceId}.`);
    }
  }

  /** Whether a (bound) principal acts for `serviceId`; an unbound one acts for every service. */
  servesFor(principal: Principal, serviceId: number): boolean {
    return principal.services === null || principal.services.includes(serviceId);
  }
}

const READ_DESCRIPTIONS = {
  read_account: "read an account's balance, history and commands",
  read_revenue: 'read the revenue report',
} as const;

function describe(action: Action): string {
  return action === 'read_account' || action === 'read_revenue'
    ? READ_DESCRIPTIONS[action]
    : COMMAND_CATALOG[action].access.action;
}

const REACH_TEXT: Record<Reach, string> = {
  none: 'no',
  own: 'own account only',
  services: 'yes; if bound to services, only theirs',
  any: 'yes',
};

/** The table as Markdown, for docs/security.md. */
export function permissionTableMarkdown(userActions: readonly MoneyCommand[]): string {
  const table = permissionTable(userActions);
  const rows = ACTIONS.map(
    (action) =>
      `| ${describe(action)} (\`${action}\`) | ${REACH_TEXT[table.user[action]]} | ${REACH_TEXT[table.service[action]]} | ${REACH_TEXT[table.admin[action]]} |`,
  );
  return ['| action | `user` | `service` | `admin` |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
