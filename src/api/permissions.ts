/**
 * Who may do what: one table, used by every route and rendered into docs/security.md (a test
 * keeps the two in step). Money entering the ledger, orders and withdrawals are the job of
 * `service` principals (billing, the order service); an end user (`user`) moves only their own
 * money out, by transfer, unless USER_ACTIONS widens that.
 */
import type { CommandType } from '../commands/schema.ts';
import { ApiError } from '../errors.ts';
import type { Role } from '../users/store.ts';

/** The commands clients may send; settles are the consumer's own. */
export const CLIENT_COMMANDS = [
  'deposit',
  'withdraw',
  'reserve',
  'capture',
  'release',
  'transfer',
] as const satisfies readonly CommandType[];
/** The money a user may move on their own account, if USER_ACTIONS lists it. */
export type MoneyCommand = (typeof CLIENT_COMMANDS)[number];
/** Threshold alerts move no money: a user may always set them on their own account. */
export const ALERT_COMMANDS = ['set_alert', 'remove_alert'] as const satisfies readonly CommandType[];
/**
 * Commands of the back office, never a user's: refunds (the services of the order, and admins)
 * and freezes (admins only). USER_ACTIONS cannot grant them.
 */
export const STAFF_COMMANDS = ['refund', 'freeze', 'unfreeze'] as const satisfies readonly CommandType[];
export type ClientCommand = MoneyCommand | (typeof ALERT_COMMANDS)[number] | (typeof STAFF_COMMANDS)[number];

export type Action = ClientCommand | 'read_account' | 'read_revenue';
export const ACTIONS: readonly Action[] = [
  ...CLIENT_COMMANDS,
  ...ALERT_COMMANDS,
  ...STAFF_COMMANDS,
  'read_account',
  'read_revenue',
];

/**
 * How far a role reaches for an action:
 *   none      never;
 *   own       only the caller's own account (a user id equal to the caller's);
 *   services  any account, but only for the services the principal is bound to, if it is bound;
 *   any       any account.
 */
export type Reach = 'none' | 'own' | 'services' | 'any';

const ORDER_COMMANDS: ReadonlySet<Action> = new Set(['reserve', 'capture', 'release', 'refund']);
/** Only an admin freezes or unfreezes an account: fraud and compliance act for the whole ledger. */
const ADMIN_COMMANDS: ReadonlySet<Action> = new Set(['freeze', 'unfreeze']);

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

/** The permission table for a deployment: `userActions` is USER_ACTIONS. */
export function permissionTable(userActions: readonly MoneyCommand[]): Record<Role, Record<Action, Reach>> {
  const user = Object.fromEntries(ACTIONS.map((action) => [action, 'none'])) as Record<Action, Reach>;
  for (const action of [...userActions, ...ALERT_COMMANDS]) user[action] = 'own';
  user.read_account = 'own';
  const service = Object.fromEntries(ACTIONS.map((action) => [action, serviceReach(action)])) as Record<Action, Reach>;
  const admin = Object.fromEntries(ACTIONS.map((action) => [action, 'any'])) as Record<Action, Reach>;
  return { user, service, admin };
}

function serviceReach(action: Action): Reach {
  if (ADMIN_COMMANDS.has(action)) return 'none';
  return ORDER_COMMANDS.has(action) || action === 'read_revenue' ? 'services' : 'any';
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

const DESCRIPTIONS: Record<Action, string> = {
  deposit: 'deposit',
  withdraw: 'withdraw',
  reserve: 'reserve funds for an order',
  capture: 'capture a reservation (recognise revenue)',
  release: 'cancel a reservation',
  transfer: 'transfer',
  set_alert: 'set a balance threshold alert',
  remove_alert: 'remove a balance threshold alert',
  refund: 'refund a captured order',
  freeze: 'freeze an account',
  unfreeze: 'unfreeze an account',
  read_account: "read an account's balance, history and commands",
  read_revenue: 'read the revenue report',
};

function describe(action: Action): string {
  return DESCRIPTIONS[action];
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
      `| ${DESCRIPTIONS[action]} (\`${action}\`) | ${REACH_TEXT[table.user[action]]} | ${REACH_TEXT[table.service[action]]} | ${REACH_TEXT[table.admin[action]]} |`,
  );
  return ['| action | `user` | `service` | `admin` |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
