import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../src/config.ts';
import { setUserDisabled } from '../../src/users/store.ts';
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
    expect(claims).toMatchObject({ sub: String(user.id), user_id: user.id, role: 'user', iss: config.jwt.issuer, aud: config.jwt.audience, typ: 'access' });
    expect(claims.exp - claims.iat).toBe(config.jwt.accessTtlS);
    const refreshed = await app.inject({ method: 'POST', url: '/api/token/refresh', payload: { refresh } });
    expect(refreshed.statusCode).toBe(200);
    expect(typeof refreshed.json().access).toBe('string');
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

  it('throttles repeated failed logins for a username', async () => {
    const app = appWithoutKafka(config, db);
    const user = await createUser(db, config, 'user', PASSWORD);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i += 1) statuses.push((await login(app, user.username, 'bad', `10.1.0.${i}`)).statusCode);
    expect(statuses.slice(0, 10).every((s) => s === 401)).toBe(true);
    const blocked = await login(app, user.username, PASSWORD, '10.2.0.1');
    expect(blocked.statusCode).toBe(429);
    expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('refuses a refresh for a disabled user, and a refresh token used as an access token', async () => {
    const app = appWithoutKafka(config, db);
    const user = await createUser(db, config, 'user', PASSWORD);
    const { refresh } = (await login(app, user.username, PASSWORD, '10.3.0.1')).json();
    const asAccess = await app.inject({ method: 'GET', url: `/api/balances/?user_id=${user.id}`, headers: { authorization: `Bearer ${refresh}` } });
    expect(asAccess.statusCode).toBe(401);
    await setUserDisabled(db.pool, user.username, true);
    const refreshed = await app.inject({ method: 'POST', url: '/api/token/refresh/', payload: { refresh } });
    expect(refreshed.statusCode).toBe(401);
  });

  it.each([
    ['no header', undefined],
    ['a malformed header', 'Token abc'],
    ['alg none', `Bearer ${new UnsecuredJWT({ user_id: 1, role: 'admin', typ: 'access' }).setSubject('1').setIssuedAt().setExpirationTime('5m').encode()}`],
  ])('answers 401 for %s', async (_name, authorization) => {
    const app = appWithoutKafka(config, db);
    const headers = authorization ? { authorization } : {};
    const response = await app.inject({ method: 'GET', url: '/api/balances/?user_id=1', headers });
    expect(response.statusCode).toBe(401);
    expect(response.json().code).toBe('unauthorized');
  });

  it('answers 401 for an RS256 token (algorithm confusion), a not-yet-valid one, and a wrong issuer', async () => {
    const app = appWithoutKafka(config, db);
    const { privateKey } = await generateKeyPair('RS256');
    const claims = { user_id: 1, role: 'admin', typ: 'access' };
    const tokens = [
      await new SignJWT(claims).setProtectedHeader({ alg: 'RS256' }).setSubject('1').setIssuer(config.jwt.issuer).setAudience(config.jwt.audience).setIssuedAt().setExpirationTime('5m').sign(privateKey),
      await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('1').setIssuer(config.jwt.issuer).setAudience(config.jwt.audience).setIssuedAt().setNotBefore('10m').setExpirationTime('20m').sign(new TextEncoder().encode(config.jwt.secret)),
      await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setSubject('1').setIssuer('someone-else').setAudience(config.jwt.audience).setIssuedAt().setExpirationTime('5m').sign(new TextEncoder().encode(config.jwt.secret)),
    ];
    for (const token of tokens) {
      const response = await app.inject({ method: 'GET', url: '/api/balances/?user_id=1', headers: { authorization: `Bearer ${token}` } });
      expect(response.statusCode).toBe(401);
    }
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

  it('answers 401 for a token signed with another key, expired, or for another audience', async () => {
    const app = appWithoutKafka(config, db);
    const sign = (key: string, patch: { audience?: string; exp?: number } = {}) =>
      new SignJWT({ user_id: 1, role: 'admin', typ: 'access' })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('1')
        .setIssuer(config.jwt.issuer)
        .setAudience(patch.audience ?? config.jwt.audience)
        .setIssuedAt()
        .setExpirationTime(patch.exp ?? '5m')
        .sign(new TextEncoder().encode(key));
    const tokens = [
      await sign('another-secret-that-is-long-enough-123456'),
      await sign(config.jwt.secret, { exp: Math.floor(Date.now() / 1000) - 60 }),
      await sign(config.jwt.secret, { audience: 'someone-else' }),
    ];
    for (const token of tokens) {
      const response = await app.inject({ method: 'GET', url: '/api/balances/?user_id=1', headers: { authorization: `Bearer ${token}` } });
      expect(response.statusCode).toBe(401);
    }
  });
});
