/**
 * The OpenAPI document is generated from the routes as the app registers them: every registered
 * route describes itself and is documented, nothing is documented that is not registered, and a
 * documented bound is the one the route enforces.
 */
import { describe, expect, it } from 'vitest';
import { HTTP_KEY_CHARS_MAX, HTTP_KEY_PATTERN } from '../../src/commands/ids.ts';
import { loadConfig } from '../../src/config.ts';
import { appWithoutKafka } from '../helpers/gateway.ts';

type Operation = {
  parameters: Array<{ name: string; in: string; schema: { pattern?: string; maxLength?: number } }>;
  requestBody?: { content: { 'application/json': { schema: Record<string, unknown> } } };
};
type Document = { paths: Record<string, Record<string, Operation>> };

const config = loadConfig({ ALLOW_DEV_SECRETS: 'true' });

async function documentedApp() {
  const app = appWithoutKafka(config, { pool: null } as never);
  await app.ready();
  const document = (await app.inject({ url: '/openapi.json' })).json() as Document;
  return { app, document };
}

describe('the OpenAPI document', () => {
  it('documents every route the app registers, and only those', async () => {
    const { app, document } = await documentedApp();
    try {
      const registered = app.describedRoutes.filter((route) => route.method !== 'OPTIONS');
      // Every route says what it is; the Swagger UI's own files say they are not part of the API.
      expect(registered.filter((route) => route.doc === null).map((r) => `${r.method} ${r.url}`)).toEqual([]);
      const expected = registered
        .filter((route) => !route.doc?.hidden)
        .map((route) => `${route.method.toLowerCase()} ${route.url.replace(/:([A-Za-z_]+)/g, '{$1}')}`)
        .sort();
      const documented = Object.entries(document.paths)
        .flatMap(([path, methods]) => Object.keys(methods).map((method) => `${method} ${path}`))
        .sort();
      expect(documented).toEqual(expected);
      expect(documented).toContain('post /api/add_funds/');
      expect(documented).toContain('get /api/commands/bulk/{id}');
    } finally {
      await app.close();
    }
  });

  it('takes request bodies from the zod schemas the routes validate with', async () => {
    const { app, document } = await documentedApp();
    await app.close();
    const schema = document.paths['/api/transfer_funds/']!.post!.requestBody!.content['application/json'].schema as {
      required: string[];
      properties: Record<string, { description?: string }>;
    };
    // One recipient (recipient_id and amount) or a split payment (recipients): neither is required alone.
    expect(schema.required).toEqual(['sender_id']);
    expect(Object.keys(schema.properties)).toEqual(['sender_id', 'recipient_id', 'amount', 'recipients', 'comment']);
    expect(schema.properties.amount?.description).toMatch(/2 decimals/);
    expect(document.paths['/api/transactions/']!.get!.parameters.map((p) => p.name)).toEqual([
      'user_id',
      'sort',
      'order',
      'limit',
      'cursor',
    ]);
  });

  it('documents the bounds the routes enforce: the Idempotency-Key, the recipients, the bulk', async () => {
    const { app, document } = await documentedApp();
    await app.close();
    const header = document.paths['/api/add_funds/']!.post!.parameters.find((p) => p.name === 'Idempotency-Key')!;
    // The same pattern the handlers check keys with (tests/api/bad-input.int.test.ts probes it).
    expect(header.schema.pattern).toBe(HTTP_KEY_PATTERN.source);
    expect(HTTP_KEY_PATTERN.source).toContain(`{1,${HTTP_KEY_CHARS_MAX}}`);
    const body = (path: string) =>
      document.paths[path]!.post!.requestBody!.content['application/json'].schema as {
        properties: Record<string, { maxItems?: number }>;
      };
    expect(body('/api/transfer_funds/').properties.recipients?.maxItems).toBe(config.limits.transferRecipientsMax);
    expect(body('/api/commands/bulk').properties.commands?.maxItems).toBe(config.limits.bulkCommandsMax);
  });
});
