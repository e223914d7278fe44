/**
 * npm run users -- add <username> [--role user|service|admin] [--services 101,102]
 *                                  [--actions deposit,withdraw]
 *                                        (the password is read from standard input)
 * npm run users -- disable|enable|logout <username>
 * npm run users -- role <username> <user|service|admin>
 * npm run users -- services <username> <101,102|all>
 * npm run users -- actions <username> <deposit,withdraw|all>
 *
 * `--actions` grants a service account only those actions (least privilege: a leaked billing
 * token can then deposit, and nothing else); `all` (the default) grants what its role allows.
 * Every change that must end the user's earlier tokens (disable, role, services, actions, logout) bumps
 * their token version; gateways refuse the old tokens within TOKEN_STATE_CACHE_MS.
 */
import { ACTIONS, type Action } from '../commands/permissions.ts';
import { runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';

import { resolveDatabaseUrl } from '../stack/database-url.ts';
import { migrate } from '../db/migrate.ts';
import { PG_ERROR, pgErrorCode } from '../db/errors.ts';
import { createPool } from '../db/pool.ts';
import { parseArgs } from '../cli.ts';
import { hashPassword, passwordProblem, readPasswordFromStdin } from './passwords.ts';
import {
  insertUser,
  logoutEverywhere,
  ROLES,
  setUserActions,
  setUserDisabled,
  setUserRole,
  setUserServices,
  usernameSchema,
  type Role,
} from './store.ts';

const USAGE =
  'usage: npm run users -- add <username> [--role user|service|admin] [--services 101,102] [--actions deposit,withdraw]  (password on standard input)\n' +
  '       npm run users -- disable|enable|logout <username> | role <username> <role> | services <username> <ids|all> | actions <username> <actions|all>';

await runCli(async () => {
  const args = parseArgs(process.argv.slice(2), { values: ['role', 'services', 'actions'], flags: [] });
  const [action, username, value] = args.positional;
  if (!action || !username) throw new UsageError(USAGE);
  const config = loadConfig(process.env, { secrets: 'unused' });
  const pool = createPool(await resolveDatabaseUrl(config.db), config.db, 'balance-users');
  try {
    await migrate(pool);
    console.log(await run(pool, action, username, value, args.values));
  } finally {
    await pool.end();
  }
});

async function run(
  pool: import('pg').Pool,
  action: string,
  username: string,
  value: string | undefined,
  options: Map<string, string>,
): Promise<string> {
  const found = (done: boolean, text: string) => {
    if (!done) throw new UsageError(`no user named ${username}`);
    return text;
  };
  switch (action) {
    case 'add':
      return String(await addUser(pool, username, options));
    case 'disable':
    case 'enable':
      return found(
        await setUserDisabled(pool, username, action === 'disable'),
        `${username} ${action}d; earlier tokens no longer work`,
      );
    case 'logout':
      return found(await logoutEverywhere(pool, username), `${username} signed out everywhere`);
    case 'role':
      return found(
        await setUserRole(pool, username, role(value)),
        `${username} is now ${value}; earlier tokens no longer work`,
      );
    case 'services':
      return found(
        await setUserServices(pool, username, services(value)),
        `${username} acts for ${value === 'all' ? 'every service' : `services ${value}`}`,
      );
    case 'actions':
      return found(
        await setUserActions(pool, username, actions(value)),
        `${username} may ${value === 'all' ? 'do everything its role allows' : value}; earlier tokens no longer work`,
      );
    default:
      throw new UsageError(USAGE);
  }
}

async function addUser(pool: import('pg').Pool, username: string, options: Map<string, string>): Promise<number> {
  const name = usernameSchema.safeParse(username);
  if (!name.success) throw new UsageError(`the username ${name.error.issues[0]!.message}`);
  const password = await readPasswordFromStdin();
  const problem = passwordProblem(password);
  if (problem)
    throw new UsageError(
      `${problem} (give it on standard input: printf '%s\\n' "$PASSWORD" | npm run users -- add ${username})`,
    );
  const bound = options.has('services') ? services(options.get('services')) : null;
  const granted = options.has('actions') ? actions(options.get('actions')) : null;
  try {
    return await insertUser(
      pool,
      username,
      await hashPassword(password),
      role(options.get('role') ?? 'user'),
      bound,
      granted,
    );
  } catch (error) {
    if (pgErrorCode(error) === PG_ERROR.UNIQUE_VIOLATION)
      throw new UsageError(`a user named ${username} already exists`);
    throw error;
  }
}

function role(text: string | undefined): Role {
  if (!text || !ROLES.includes(text as Role)) throw new UsageError(`the role must be one of ${ROLES.join(', ')}`);
  return text as Role;
}

/** `all` unbinds; otherwise a comma-separated list of service ids. */
function services(text: string | undefined): number[] | null {
  if (text === 'all') return null;
  if (!text || !/^[1-9][0-9]{0,15}(,[1-9][0-9]{0,15})*$/.test(text))
    throw new UsageError('services must be a comma-separated list of service ids, or all');
  return [...new Set(text.split(',').map(Number))];
}

/** `all` grants what the role allows; otherwise a comma-separated list of action names. */
function actions(text: string | undefined): Action[] | null {
  if (text === 'all') return null;
  const names = (text ?? '').split(',');
  const unknown = names.filter((name) => !ACTIONS.includes(name as Action));
  if (!text || unknown.length > 0)
    throw new UsageError(`actions must be a comma-separated list of ${ACTIONS.join(', ')}, or all`);
  return [...new Set(names as Action[])];
}
