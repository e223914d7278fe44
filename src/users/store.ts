/** The users table: who may log in, with which role, bound to which services, at which token version. */
import type pg from 'pg';
import { storableText } from '../commands/text.ts';

import { ROLES, type Role } from '../commands/permissions.ts';

export { ROLES, type Role };

/** The database allows 150 characters; control characters would break logs and the NUL the query. */
export const usernameSchema = storableText({ charsMin: 1, charsMax: 150, bytesMax: 600 });

export interface UserRecord {
  readonly id: number;
  readonly username: string;
  readonly passwordHash: string;
  readonly role: Role;
  readonly disabled: boolean;
  /** Bumped whenever earlier tokens must stop working: disable, role change, logout. */
  readonly tokenVersion: number;
  /** The services a service account may act for; null for all. */
  readonly services: readonly number[] | null;
  /** The actions the account is granted (api/permissions.ts); null for all its role allows. */
  readonly actions: readonly string[] | null;
}

const COLUMNS = 'id, username, password_hash, role, disabled, token_version, services, actions';
const SQL_FIND_BY_USERNAME = `SELECT ${COLUMNS} FROM users WHERE username = $1`;
const SQL_FIND_BY_ID = `SELECT ${COLUMNS} FROM users WHERE id = $1`;
const SQL_INSERT_USER =
  'INSERT INTO users (username, password_hash, role, services, actions) VALUES ($1, $2, $3, $4, $5) RETURNING id';
// Every change that must end earlier tokens bumps the version in the same statement.
const SQL_SET_DISABLED = 'UPDATE users SET disabled = $2, token_version = token_version + 1 WHERE username = $1';
const SQL_SET_ROLE = 'UPDATE users SET role = $2, token_version = token_version + 1 WHERE username = $1';
const SQL_SET_SERVICES = 'UPDATE users SET services = $2, token_version = token_version + 1 WHERE username = $1';
const SQL_SET_ACTIONS = 'UPDATE users SET actions = $2, token_version = token_version + 1 WHERE username = $1';
const SQL_LOGOUT = 'UPDATE users SET token_version = token_version + 1 WHERE username = $1';
const SQL_SET_PASSWORD_HASH = 'UPDATE users SET password_hash = $2 WHERE id = $1';

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  role: Role;
  disabled: boolean;
  token_version: number;
  services: string[] | null;
  actions: string[] | null;
}

function toRecord(row: UserRow | undefined): UserRecord | null {
  if (!row) return null;
  return {
    id: Number(row.id),
    username: row.username,
    passwordHash: row.password_hash,
    role: row.role,
    disabled: row.disabled,
    tokenVersion: row.token_version,
    services: row.services === null ? null : row.services.map(Number),
    actions: row.actions,
  };
}

export async function findUserByUsername(db: pg.Pool, username: string): Promise<UserRecord | null> {
  return toRecord(
    (await db.query<UserRow>({ name: 'users_by_name', text: SQL_FIND_BY_USERNAME, values: [username] })).rows[0],
  );
}

export async function findUserById(db: pg.Pool, id: number): Promise<UserRecord | null> {
  return toRecord((await db.query<UserRow>({ name: 'users_by_id', text: SQL_FIND_BY_ID, values: [id] })).rows[0]);
}

export async function insertUser(
  db: pg.Pool,
  username: string,
  passwordHash: string,
  role: Role,
  services: readonly number[] | null = null,
  actions: readonly string[] | null = null,
): Promise<number> {
  const { rows } = await db.query<{ id: string }>(SQL_INSERT_USER, [username, passwordHash, role, services, actions]);
  return Number(rows[0]!.id);
}

async function changed(db: pg.Pool, sql: string, values: unknown[]): Promise<boolean> {
  return ((await db.query(sql, values)).rowCount ?? 0) > 0;
}

export const setUserDisabled = (db: pg.Pool, username: string, disabled: boolean) =>
  changed(db, SQL_SET_DISABLED, [username, disabled]);
export const setUserRole = (db: pg.Pool, username: string, role: Role) => changed(db, SQL_SET_ROLE, [username, role]);
export const setUserServices = (db: pg.Pool, username: string, services: readonly number[] | null) =>
  changed(db, SQL_SET_SERVICES, [username, services]);
export const setUserActions = (db: pg.Pool, username: string, actions: readonly string[] | null) =>
  changed(db, SQL_SET_ACTIONS, [username, actions]);
/** Ends every token issued to the user so far. */
export const logoutEverywhere = (db: pg.Pool, username: string) => changed(db, SQL_LOGOUT, [username]);
export const setPasswordHash = (db: pg.Pool, id: number, hash: string) =>
  changed(db, SQL_SET_PASSWORD_HASH, [id, hash]);
