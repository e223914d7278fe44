/**
 * The OpenAPI document, generated from the routes as the app registered them (route.ts): their
 * paths and methods, the zod schemas they validate with, and what they say of themselves. A
 * route that is registered is documented, with the bounds it enforces. The Swagger UI page at
 * /docs is served from the swagger-ui-dist package (no CDN).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { HeaderDoc, RegisteredRoute } from './route.ts';

export function openApiDocument(routes: readonly RegisteredRoute[]): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    if (!route.doc || route.doc.hidden) continue;
    const documented = route.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    paths[documented] ??= {};
    paths[documented]![route.method.toLowerCase()] = {
      summary: route.doc.summary,
      tags: [route.doc.tag],
      ...(route.doc.auth ? { security: [{ bearer: [] }] } : {}),
      parameters: [
        ...objectParameters(route.querystring, 'query'),
        ...(route.doc.headers ?? []).map(headerParameter),
        ...objectParameters(route.params, 'path'),
      ],
      ...(route.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(route.body) } } } }
        : {}),
      responses: Object.fromEntries(
        Object.entries(route.doc.responses).map(([status, description]) => [status, { description }]),
      ),
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'balance-service',
      version: '0.1.0',
      description:
        'User balances: deposits, reservations, revenue recognition, transfers. Amounts are decimal strings.',
    },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    paths,
  };
}

/** A zod schema as the JSON Schema of what a client sends. */
export function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
}

function objectParameters(schema: z.ZodType | undefined, where: 'query' | 'path') {
  if (!schema) return [];
  const json = jsonSchema(schema) as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(json.properties ?? {}).map(([name, property]) => ({
    name,
    in: where,
    required: where === 'path' || (json.required?.includes(name) ?? false),
    schema: property,
  }));
}

function headerParameter(header: HeaderDoc) {
  return {
    name: header.name,
    in: 'header',
    required: false,
    schema: jsonSchema(header.schema),
    description: header.description,
  };
}

const SWAGGER_UI_DIR = path.dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));
const SWAGGER_FILES = new Map([
  ['swagger-ui.css', 'text/css; charset=utf-8'],
  ['swagger-ui-bundle.js', 'application/javascript; charset=utf-8'],
]);

const DOCS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>balance-service API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui' });</script>
</body></html>`;

const HIDDEN = {
  doc: { summary: 'The API documentation', tag: 'operations', auth: false, responses: {}, hidden: true },
} as const;

/** /openapi.json (made once all routes are registered, on the first request) and the /docs page. */
export function registerDocsRoutes(app: FastifyInstance, routes: readonly RegisteredRoute[]): void {
  let document: Record<string, unknown> | null = null;
  app.get('/openapi.json', { config: HIDDEN }, async () => (document ??= openApiDocument(routes)));
  app.get('/docs', { config: HIDDEN }, async (_request, reply) =>
    reply.header('content-type', 'text/html; charset=utf-8').send(DOCS_PAGE),
  );
  app.get('/docs/static/:file', { config: HIDDEN }, async (request, reply) => {
    const file = (request.params as { file: string }).file;
    const type = SWAGGER_FILES.get(file);
    if (!type) return reply.code(404).send({ code: 'not_found', message: 'Nothing exists at this address.' });
    return reply
      .header('content-type', type)
      .header('cache-control', 'public, max-age=86400')
      .send(await readFile(path.join(SWAGGER_UI_DIR, file)));
  });
}
