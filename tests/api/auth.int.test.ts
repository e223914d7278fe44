import { randomUUID, scrypt } from 'node:crypto';
import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { withOverrides } from '../../src/config.ts';
import { findUserById, insertUser, logoutEverywhere, setUserDisabled, setUserRole } from '../../src/users/store.ts';
import { appWithoutKafka, createUser } from '../helpers/gateway.ts';
import { createTestDatabase, testConfig, type TestDatabase } from '../helpers/stack.ts';

const PASSWORD = 'correct horse battery';

describe('authentication', () => {
  let db: TestDatabase;
  let config: Config;
  beforeAll(async () => {
    db = await createTestDatabase();
    config = testConfig(db);
  });
  afterAll(async () => {
    await db?.drop();
  });

  const login = (app: ReturnType<typeof appWithoutKafka>, username: string, password: string, ip = '10.0.0.1') =>
    app.inject({ method: 'POST', url: '/api/token/', payload: { username, password }, remoteAddress: ip });

  it('issues access and refresh tokens with the documented claims', async () => {
    const app = appWithoutKafka(config, db);
    const user = await createUser(db, config, 'user', PASSWORD);
    const response = await login(app, user.username, PASSWORD);
    expect(response.statusCode).toBe(200);
    const { access, refresh } = response.json();
    const claims = JSON.parse(Buffer.from(access.split('.')[1], 'base64url').toString());
    expect(claims).toMatchObject({
      sub: String(user.id),
      user_id: user.id,
      role: 'user',
      ver: 0,
      iss: config.jwt.issuer,
      aud: config.jwt.audience,
      typ: 'access',
    });
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
    expect(claims.exp - claims.iat).toBe(config.jwt.accessTtlS);
    const refreshed = await app.inject({ method: 'POST', url: '/api/token/refresh', payload: { refresh } });
    expect(refreshed.statusCode).toBe(200);
    expect(Object.keys(refreshed.json()).sort()).toEqual(['access', 'refresh']);
  });

  it('rotates refresh tokens: reusing one revokes its whole family and every access token of the user', async () => {
    // No state cache, so the access tokens' end shows at once (it takes TOKEN_STATE_CACHE_MS otherwise).
    const app = appWithoutKafka(withOverrides(config, { auth: { tokenStateCacheMs: 0 } }), db);
    const user = await createUser(db, config, 'user', PASSWORD);
    const first = (await login(app, user.username, PASSWORD, '10.4.0.1')).json().refresh;
    const refresh = (token: string) =>
      app.inject({ method: 'POST', url: '/api/token/refresh', payload: { refresh: token } });
    const rotated = (await refresh(first)).json();
    const second = rotated.refresh;
    expect(typeof second).toBe('string');
    const read = async (access: string) =>
      (
        await app.inject({
          method: 'GET',
          url: `/api/balances/?user_id=${user.id}`,
          headers: { authorization: `Bearer ${access}` },
        })
      ).statusCode;
    const accessBefore = await read(rotated.access);
    expect(accessBefore).not.toBe(401);
    // Someone replays the first one (stolen): refused, and the family dies with it.
    const replay = await refresh(first);
    expect(replay.statusCode).toBe(401);
    expect(replay.json().message).toMatch(/already used/);
    expect((await refresh(second)).statusCode).toBe(401);
    // So do the access tokens already issued: whoever refreshed first (maybe the thief) is out.
    expect(await read(rotated.access)).toBe(401);
    // A new sign-in starts a new family, which works.
    const fresh = (await login(app, user.username, PASSWORD, '10.4.0.1')).json().refresh;
    expect((await refresh(fresh)).statusCode).toBe(200);
  });

  it("closes the reuse race: when one token is refreshed twice at once, the winner's new tokens are refused too", async () => {
    const app = appWithoutKafka(withOverrides(config, { auth: { tokenStateCacheMs: 0 } }), db);
    const user = await createUser(db, config, 'user', PASSWORD);
    const first = (await login(app, user.username, PASSWORD, '10.4.0.2')).json().refresh;
    const refresh = (token: string) =>
      app.inject({ method: 'POST', url: '/api/token/refresh', payload: { refresh: token } });
    const both = await Promise.all([refresh(first), refresh(first)]);
    expect(both.map((r) => r.statusCode).sort()).toEqual([200, 401]);
    const winner = both.find((r) => r.statusCode === 200)!.json();
    expect((await refresh(winner.refresh)).statusCode).toBe(401);
    const read = await app.inject({
      method: 'GET',
      url: `/api/balances/?user_id=${user.id}`,
      headers: { authorization: `Bearer ${winner.access}` },
    });
    expect(read.statusCode).toBe(401);
  });

  it.each([
    ['disabling the user', (username: string) => setUserDisabled(db.pool, username, true)],
    ['changing their role', (username: string) => setUserRole(db.pool, username, 'admin')],
    ['signing them out everywhere', (username: string) => logoutEverywhere(db.pool, username)],
  ])('stops access and refresh tokens within TOKEN_STATE_CACHE_MS after %s', async (_name, revoke) => {
    const cached = withOverrides(config, { auth: { tokenStateCacheMs: 300 } });
    const app = appWithoutKafka(cached, db);
    const user = await createUser(db, cached, 'user', PASSWORD);
    const { access, refresh } = (await login(app, user.username, PASSWORD, '10.5.0.1')).json();
    const read = () =>
      app.inject({
        method: 'GET',
        url: `/api/balances/?user_id=${user.id}`,
        headers: { authorization: `Bearer ${access}` },
      });
    expect((await read()).statusCode).toBe(200);
    await revoke(user.username);
    await new Promise((resolve) => setTimeout(resolve, 350));
    expect((await read()).statusCode).toBe(401);
    expect((await app.inject({ method: 'POST', url: '/api/token/refresh', payload: { refresh } })).statusCode).toBe(
      401,
    );
  });

  it('upgrades a password hash made with weaker parameters at the next sign-in', async () => {
    const app = appWithoutKafka(config, db);
    const weak = await weakHash(PASSWORD);
    const id = await insertUser(db.pool, `weak-${Date.now()}`, weak, 'user');
    const user = (await findUserById(db.pool, id))!;
    expect((await login(app, user.username, PASSWORD, '10.6.0.1')).statusCode).toBe(200);
    const upgraded = (await findUserById(db.pool, id))!.passwordHash;
    expect(upgraded).not.toBe(weak);
    expect(upgraded).toMatch(/^scrypt\$131072\$8\$1\$/);
    expect((await login(app, user.username, PASSWORD, '10.6.0.1')).statusCode).toBe(200);
  });

  it('answers the same 401 for a wrong password and for an unknown user', async () => {
    const app = appWithoutKafka(config, db);
    const user = await createUser(db, config, 'user', PASSWORD);
    const wrong = await login(app, user.username, 'not the password');
    const unknown = await login(app, 'nobody-at-all', 'whatever');
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(401);
    expect(wrong.json()).toEqual(unknown.json());
  });

  it('slows repeated failed logins from one address down, without locking the owner out elsewhere', async () => {
    const app = appWithoutKafka(config, db);
    const user = await createUser(db, config, 'user', PASSWORD);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push((await login(app, user.username, 'bad', '10.1.0.1')).statusCode);
    expect(statuses).toEqual([401, 401, 401, 429, 429]);
    const blocked = await login(app, user.username, PASSWORD, '10.1.0.1');
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
    // The owner, from their own address, is not affected.
    expect((await login(app, user.username, PASSWORD, '10.2.0.1')).statusCode).toBe(200);
  });

  it('counts parallel attempts before any of them is checked: they cannot all pass', async () => {
    const app = appWithoutKafka(config, db);
    const user = await createUser(db, config, 'user', PASSWORD);
    const statuses = await Promise.all(
      Array.from({ length: 8 }, () => login(app, user.username, 'bad', '10.7.0.1').then((r) => r.statusCode)),
    );
    expect(statuses.filter((s) => s === 401)).toHaveLength(3);
    expect(statuses.filter((s) => s === 429)).toHaveLength(5);
  });

  it('locks an account after many failures from rotating addresses, and says so with 429 and Retry-After', async () => {
    const app = appWithoutKafka(config, db);
    const user = await createUser(db, config, 'user', PASSWORD);
    // All at once, from 25 addresses: each is counted as it begins, so past the account's 20
    // free failures the rest are refused before any password is checked, whatever the timing.
    const answers = await Promise.all(
      Array.from({ length: 25 }, (_, i) => login(app, user.username, 'bad', `2001:db8:7::${i}`)),
    );
    expect(answers.filter((a) => a.statusCode === 401)).toHaveLength(20);
    const locked = answers.filter((a) => a.statusCode === 429);
    expect(locked).toHaveLength(5);
    for (const answer of locked) {
      expect(answer.json().message).toMatch(/account is locked/);
      expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
  });

  it('bounds the password checks one address may have under way, so it cannot fill the shared hashing queue', async () => {
    const app = appWithoutKafka(config, db);
    const users = await Promise.all(Array.from({ length: 12 }, () => createUser(db, config, 'user', PASSWORD)));
    const [crowd, other] = await Promise.all([
      Promise.all(users.map((u) => login(app, u.username, 'bad', '10.8.0.1'))),
      login(app, users[0]!.username, PASSWORD, '10.8.0.2'),
    ]);
    const statuses = crowd.map((r) => r.statusCode);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 503)).toEqual([]);
    expect(crowd.find((r) => r.statusCode === 429)!.json().message).toMatch(/this address at once/);
    expect(other.statusCode).toBe(200);
  });

  it('refuses a refresh for a disabled user, and a refresh token used as an access token', async () => {
    const app = appWithoutKafka(config, db);
    const user = await createUser(db, config, 'user', PASSWORD);
    const { refresh } = (await login(app, user.username, PASSWORD, '10.3.0.1')).json();
    const asAccess = await app.inject({
      method: 'GET',
      url: `/api/balances/?user_id=${user.id}`,
      headers: { authorization: `Bearer ${refresh}` },
    });
    expect(asAccess.statusCode).toBe(401);
    await setUserDisabled(db.pool, user.username, true);
    const refreshed = await app.inject({ method: 'POST', url: '/api/token/refresh/', payload: { refresh } });
    expect(refreshed.statusCode).toBe(401);
  });

  it.each([
    ['no header', undefined],
    ['a malformed header', 'Token abc'],
    [
      'alg none',
      `Bearer ${new UnsecuredJWT({ user_id: 1, role: 'admin', typ: 'access' }).setSubject('1').setIssuedAt().setExpirationTime('5m').encode()}`,
    ],
  ])('answers 401 for %s', async (_name, authorization) => {
    const app = appWithoutKafka(config, db);
    const headers = authorization ? { authorization } : {};
    const response = await app.inject({ method: 'GET', url: '/api/balances/?user_id=1', headers });
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('unauthorized');
  });

  it('treats SQL in credentials as text', async () => {
    const app = appWithoutKafka(config, db);
    await createUser(db, config, 'user', PASSWORD);
    for (const username of ["' OR '1'='1", "admin'--", '"; DROP TABLE users; --']) {
      const response = await login(app, username, "' OR '1'='1", '10.9.0.1');
      expect(response.statusCode).toBe(401);
    }
    expect((await db.pool.query('SELECT count(*)::int AS n FROM users')).rows[0].n).toBeGreaterThan(0);
  });

  /**
   * Each token differs from one the service would issue in exactly one respect, and the control
   * (no change at all) is accepted: so each 401 is that check's, not an earlier one's.
   */
  it('answers 401 for a token that differs from a valid one only in its key, algorithm, expiry, start, issuer, audience, type or id', async () => {
    const app = appWithoutKafka(config, db);
    const admin = await createUser(db, config, 'admin', PASSWORD);
    const now = Math.floor(Date.now() / 1000);
    const { privateKey } = await generateKeyPair('RS256');
    const secret = new TextEncoder().encode(config.jwt.secret);
    interface Change {
      claims?: Record<string, unknown>;
      alg?: 'HS256' | 'RS256';
      key?: Parameters<SignJWT['sign']>[0];
      jti?: string | null;
      iss?: string;
      aud?: string;
      exp?: number;
      nbf?: number;
    }
    const sign = (change: Change = {}) => {
      const jwt = new SignJWT({ user_id: admin.id, role: 'admin', typ: 'access', ver: 0, ...change.claims })
        .setProtectedHeader({ alg: change.alg ?? 'HS256', typ: 'JWT' })
        .setSubject(String(admin.id))
        .setIssuer(change.iss ?? config.jwt.issuer)
        .setAudience(change.aud ?? config.jwt.audience)
        .setIssuedAt(now)
        .setExpirationTime(change.exp ?? now + 300);
      if (change.jti !== null) jwt.setJti(change.jti ?? randomUUID());
      if (change.nbf !== undefined) jwt.setNotBefore(change.nbf);
      return jwt.sign(change.key ?? secret);
    };
    const read = async (token: string) =>
      (
        await app.inject({
          method: 'GET',
          url: `/api/balances/?user_id=${admin.id}`,
          headers: { authorization: `Bearer ${token}` },
        })
      ).statusCode;
    const control = await read(await sign());
    expect(control).not.toBe(401);
    const changes: Record<string, Change> = {
      'another key': { key: new TextEncoder().encode('another-secret-that-is-long-enough-123456') },
      'RS256 (algorithm confusion)': { alg: 'RS256', key: privateKey },
      expired: { exp: now - 60 },
      'not yet valid': { nbf: now + 600 },
      'another issuer': { iss: 'someone-else' },
      'another audience': { aud: 'someone-else' },
      'a refresh token': { claims: { typ: 'refresh', fam: randomUUID() } },
      'no jti': { jti: null },
    };
    const statuses: Record<string, number> = {};
    for (const [name, change] of Object.entries(changes)) statuses[name] = await read(await sign(change));
    expect(statuses).toEqual(Object.fromEntries(Object.keys(changes).map((name) => [name, 401])));
  });
});

/** A hash of the kind an earlier version stored: N = 2^14. */
function weakHash(password: string): Promise<string> {
  const salt = Buffer.from('0123456789abcdef');
  return new Promise((resolve, reject) =>
    scrypt(password, salt, 32, { N: 16_384, r: 8, p: 1 }, (error, key) =>
      error
        ? reject(error)
        : resolve(['scrypt', 16_384, 8, 1, salt.toString('base64url'), key.toString('base64url')].join('$')),
    ),
  );
}
