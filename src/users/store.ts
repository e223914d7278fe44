/** The users table: who may log in, with which role. */
import type pg from 'pg';
import { storableText } from '../commands/text.ts';

/** The database allows 150 characters; control characters would break logs and the NUL the query. */
export const usernameSchema = storableText({ charsMin: 1, charsMax: 150, bytesMax: 600 });

export const ROLES = ['user', 'service', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface UserRecord {
  readonly id: number;
  readonly username: string;
  readonly passwordHash: string;
  readonly role: Role;
  readonly disabled: boolean;
}

const SQL_FIND_BY_USERNAME = 'SELECT id, username, password_hash, role, disabled FROM users WHERE username = $1';
const SQL_FIND_BY_ID = 'SELECT id, username, password_hash, role, disabled FROM users WHERE id = $1';
const SQL_INSERT_USER = 'INSERT INTO users (username, password_hash, role) VALUES ($1, $2, $3) RETURNING id';
const SQL_SET_DISABLED = 'UPDATE users SET disabled = $2 WHERE username = $1';

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  role: Role;
  disabled: boolean;
}

function toRecord(row: UserRow | undefined): UserRecord | null {
  return row ? { id: Number(row.id), username: row.username, passwordHash: row.password_hash, role: row.role, disabled: row.disabled } : null;
}

export async function findUserByUsername(db: pg.Pool, username: string): Promise<UserRecord | null> {
  return toRecord((await db.query<UserRow>({ name: 'users_by_name', text: SQL_FIND_BY_USERNAME, values: [username] })).rows[0]);
}

export async function findUserById(db: pg.Pool, id: number): Promise<UserRecord | null> {
  return toRecord((await db.query<UserRow>({ name: 'users_by_id', text: SQL_FIND_BY_ID, values: [id] })).rows[0]);
}

export async function insertUser(db: pg.Pool, username: string, passwordHash: string, role: Role): Promise<number> {
  const { rows } = await db.query<{ id: string }>(SQL_INSERT_USER, [username, passwordHash, role]);
  return Number(rows[0]!.id);
}

export async function setUserDisabled(db: pg.Pool, username: string, disabled: boolean): Promise<boolean> {
  return ((await db.query(SQL_SET_DISABLED, [username, disabled])).rowCount ?? 0) > 0;
}
