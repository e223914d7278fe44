/**
 * Password hashing with node's scrypt, at OWASP's current guidance (N = 2^17, r = 8, p = 1:
 * 128 MiB and about half a second of one core per hash here). The stored form carries its
 * parameters, so hashes made with weaker ones still verify, and are upgraded at the next login.
 *
 * A hash costs so much that logins are a way to burn the gateway's CPU: at most
 * PASSWORD_HASHES_CONCURRENT_MAX run at once, and past PASSWORD_HASHES_QUEUED_MAX waiting ones
 * a login is refused at once (answered 503) instead of queueing without bound.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';

export const PASSWORD_PARAMS = { N: 131_072, r: 8, p: 1 } as const;
const KEY_BYTES = 32;
const SALT_BYTES = 16;
export const PASSWORD_CHARS_MIN = 8;
export const PASSWORD_CHARS_MAX = 1_024;
export const PASSWORD_HASHES_CONCURRENT_MAX = 2;
export const PASSWORD_HASHES_QUEUED_MAX = 64;

export class PasswordHashingBusyError extends Error {
  override readonly name = 'PasswordHashingBusyError';
}

let running = 0;
const waiting: Array<() => void> = [];

async function scrypt(password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  if (running >= PASSWORD_HASHES_CONCURRENT_MAX) {
    if (waiting.length >= PASSWORD_HASHES_QUEUED_MAX)
      throw new PasswordHashingBusyError('too many password checks are waiting');
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
  running += 1;
  try {
    // maxmem: 128 * N * r bytes plus headroom; node's default (32 MiB) refuses N = 2^17.
    return await new Promise<Buffer>((resolve, reject) =>
      scryptCallback(password, salt, keyLength, { ...options, maxmem: 256 * 1024 * 1024 }, (error, key) =>
        error ? reject(error) : resolve(key),
      ),
    );
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await scrypt(password, salt, KEY_BYTES, PASSWORD_PARAMS);
  return [
    'scrypt',
    PASSWORD_PARAMS.N,
    PASSWORD_PARAMS.r,
    PASSWORD_PARAMS.p,
    salt.toString('base64url'),
    key.toString('base64url'),
  ].join('$');
}

export interface PasswordCheck {
  readonly ok: boolean;
  /** The hash was made with weaker parameters than today's: store a new one. */
  readonly outdated: boolean;
}

export async function verifyPassword(password: string, stored: string): Promise<PasswordCheck> {
  const [scheme, n, r, p, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return { ok: false, outdated: false };
  const params = { N: Number(n), r: Number(r), p: Number(p) };
  const expected = Buffer.from(hash, 'base64url');
  const key = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, params);
  const outdated = params.N < PASSWORD_PARAMS.N || params.r < PASSWORD_PARAMS.r || params.p < PASSWORD_PARAMS.p;
  return { ok: timingSafeEqual(key, expected), outdated };
}

/**
 * A hash of a password nobody knows, at today's parameters, checked when the user does not exist
 * so that both cases cost the same time.
 */
export const DUMMY_PASSWORD_HASH = `scrypt$${PASSWORD_PARAMS.N}$${PASSWORD_PARAMS.r}$${PASSWORD_PARAMS.p}$7cL1cS2oXJj0mEfx8n2Y4w$T3Vr1GQ0qYx0aUR9VJkz6uVbq1fE0v3wWm8tQx9Lk2c`;

/** Reads a password from standard input (a line, or everything up to the end), never from argv. */
export async function readPasswordFromStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.length > PASSWORD_CHARS_MAX + 2) break;
  }
  return text.replace(/\r?\n$/, '');
}

export function passwordProblem(password: string): string | null {
  if (password.length < PASSWORD_CHARS_MIN || password.length > PASSWORD_CHARS_MAX)
    return `the password must be ${PASSWORD_CHARS_MIN} to ${PASSWORD_CHARS_MAX} characters`;
  return null;
}
