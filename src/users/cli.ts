/**
 * `npm run users -- add <username> <password> [--role user|service|admin]` prints the new
 * user's id; `npm run users -- disable|enable <username>`.
 */
import { runCli, UsageError } from '../cli.ts';
import { loadConfig } from '../config.ts';
import { resolveDatabaseUrl } from '../db/database.ts';
import { migrate } from '../db/migrate.ts';
import { PG_ERROR, pgErrorCode } from '../db/errors.ts';
import { createPool } from '../db/pool.ts';
import { hashPassword, PASSWORD_CHARS_MAX } from './passwords.ts';
import { insertUser, ROLES, setUserDisabled, usernameSchema, type Role } from './store.ts';

const USAGE = 'usage: npm run users -- add <username> <password> [--role user|service|admin] | disable <username> | enable <username>';

await runCli(async () => {
  const [action, username, ...rest] = process.argv.slice(2);
  if (!action || !username) throw new UsageError(USAGE);
  const config = loadConfig();
  const pool = createPool(await resolveDatabaseUrl(config.db), config.db, 'balance-users');
  try {
    await migrate(pool);
    if (action === 'add') console.log(await addUser(pool, username, rest));
    else if (action === 'disable' || action === 'enable') {
      if (!(await setUserDisabled(pool, username, action === 'disable'))) throw new UsageError(`no user named ${username}`);
      console.log(`${username} ${action}d`);
    } else throw new UsageError(USAGE);
  } finally {
    await pool.end();
  }
});

async function addUser(pool: import('pg').Pool, username: string, rest: string[]): Promise<number> {
  const [password, flag, roleName] = rest;
  if (!password || (flag !== undefined && flag !== '--role')) throw new UsageError(USAGE);
  const name = usernameSchema.safeParse(username);
  if (!name.success) throw new UsageError(`the username ${name.error.issues[0]!.message}`);
  if (password.length < 8 || password.length > PASSWORD_CHARS_MAX) throw new UsageError(`the password must be 8 to ${PASSWORD_CHARS_MAX} characters`);
  const role = (roleName ?? 'user') as Role;
  if (!ROLES.includes(role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
  try {
    return await insertUser(pool, username, await hashPassword(password), role);
  } catch (error) {
    if (pgErrorCode(error) === PG_ERROR.UNIQUE_VIOLATION) throw new UsageError(`a user named ${username} already exists`);
    throw error;
  }
}
