/**
 * The OpenAPI document, generated from the same zod schemas the routes validate with, and the
 * Swagger UI page at /docs (served from the swagger-ui-dist package, no CDN).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ApiContext } from './context.ts';
import { COMMAND_ROUTES } from './routes/commands.ts';
import type { HttpSchemas } from './schemas.ts';

interface Operation {
  readonly method: 'get' | 'post';
  readonly path: string;
  readonly summary: string;
  readonly tag: 'auth' | 'commands' | 'reads' | 'operations';
  readonly body?: keyof HttpSchemas;
  readonly query?: keyof HttpSchemas;
  readonly auth?: boolean;
  readonly responses: Record<string, string>;
}

const COMMAND_RESPONSES = {
  '201': 'Applied: the transaction JSON.',
  '200': 'A repeat of an Idempotency-Key already applied: the same transaction JSON.',
  '202': 'Accepted, not decided yet: poll the Location.',
  '400': 'Invalid input; `details` names the fields.',
  '401': 'Missing or invalid access token.',
  '403': 'Not allowed for this account.',
  '409': 'Rejected by the ledger; `code` says why.',
  '413': 'Body too large.',
  '415': 'Not application/json.',
  '429': 'Over the rate limit of this account (`rate_limited`); retry after `Retry-After` seconds.',
  '503': 'Kafka unreachable; nothing was done, retry with the same Idempotency-Key.',
};

export const OPERATIONS: readonly Operation[] = [
  {
    method: 'post',
    path: '/api/token/',
    summary: 'Log in: get access and refresh tokens',
    tag: 'auth',
    body: 'login',
    responses: { '200': '{access, refresh}', '401': 'Wrong credentials.', '429': 'Too many failed attempts.' },
  },
  {
    method: 'post',
    path: '/api/token/refresh/',
    summary: 'Get a new access token',
    tag: 'auth',
    body: 'refresh',
    responses: { '200': '{access}', '401': 'Invalid refresh token.' },
  },
  // The money-moving endpoints come from the route table they are registered from.
  ...COMMAND_ROUTES.map(
    (route): Operation => ({
      method: 'post',
      path: `${route.path}/`,
      summary: route.summary,
      tag: 'commands',
      body: route.schema,
      auth: true,
      responses: COMMAND_RESPONSES,
    }),
  ),
  {
    method: 'get',
    path: '/api/balances/',
    summary: "A user's balance, now or at a past instant (`at`)",
    tag: 'reads',
    query: 'balanceQuery',
    auth: true,
    responses: {
      '200':
        "{user_id, amount, reserved, incoming, currency, version, frozen, frozen_reason?}: amount is spendable; incoming holds received transfers until they settle (milliseconds); version is the sequence of the user's last balance event; frozen_reason is shown to services and admins. With `currency=USD`: the amounts converted at the stored rate (half-even to the currency's minor unit), then rate {units, rub, source, date} and ledger {amount, reserved, incoming, currency: RUB}. With `at`: {user_id, at, amount, reserved, incoming, currency, version} as of that instant, `at` in UTC",
      '400': '`at` is malformed or in the future; `currency` is not three capital letters, or is combined with `at`.',
      '409': '`rate_unavailable`: no rate for the currency, or one older than FX_RATE_AGE_MAX_S.',
      '404': 'Unknown user.',
    },
  },
  {
    method: 'get',
    path: '/api/balance_alerts/',
    summary: "A user's threshold alerts",
    tag: 'reads',
    query: 'alertsQuery',
    auth: true,
    responses: {
      '200':
        '{user_id, alerts: [{alert_id, direction, threshold, past}]}; past: the available balance is past the threshold now',
      '403': "Another user's account.",
      '404': 'Unknown user.',
    },
  },
  {
    method: 'get',
    path: '/api/transactions/',
    summary: "A user's history, keyset-paginated",
    tag: 'reads',
    query: 'historyQuery',
    auth: true,
    responses: { '200': '{items, next_cursor}' },
  },
  {
    method: 'get',
    path: '/api/statements/',
    summary: "A user's monthly statement: opening balance, rows with running balances, closing balance (JSON, or CSV)",
    tag: 'reads',
    query: 'statementQuery',
    auth: true,
    responses: {
      '200': '{user_id, month, time_zone, from, to, complete, opening, rows, closing, next_cursor}, or CSV',
      '400': 'A malformed or future month, limit, cursor or format.',
      '403': "Another user's account.",
      '404': 'Unknown user.',
    },
  },
  {
    method: 'get',
    path: '/api/reports/revenue/',
    summary: 'Monthly revenue by service (CSV, or JSON with Accept: application/json)',
    tag: 'reads',
    query: 'revenueQuery',
    auth: true,
    responses: {
      '200': 'CSV service_id;service_name;revenue;captured;refunded (revenue is net of refunds)',
      '403': 'Only service and admin.',
    },
  },
  {
    method: 'get',
    path: '/api/commands/{id}',
    summary: 'Poll a command',
    tag: 'reads',
    auth: true,
    responses: {
      '200':
        '{status: pending|applied|rejected, ...}; a transfer whose credit is not yet settled answers {status: pending, credit: in_flight}',
      '404': 'Unknown command.',
    },
  },
  {
    method: 'post',
    path: '/api/commands/bulk',
    summary:
      'Up to BULK_COMMANDS_MAX commands in one request: each item {type, idempotency_key, ...the body of its endpoint}, validated and permitted on its own, all valid ones published in one produce',
    tag: 'commands',
    body: 'bulk',
    auth: true,
    responses: {
      '200':
        '{batch_id, status_url, items: [{index, idempotency_key, status: applied|rejected|invalid, result|code|error}]}: every item decided',
      '202':
        'Prefer: respond-async, or not all decided within REPLY_WAIT_MS: the same, with pending items, and Location: the batch status URL',
      '400':
        'No commands, more than BULK_COMMANDS_MAX, or not an array (a bad item is reported in its own entry instead)',
      '413': 'The body is larger than BULK_BODY_BYTES_MAX.',
      '503': 'Kafka did not acknowledge the bulk; send it again: the idempotency keys keep each item to one effect.',
    },
  },
  {
    method: 'get',
    path: '/api/commands/bulk/{id}',
    summary: "A bulk's items and their states now",
    tag: 'reads',
    auth: true,
    responses: {
      '200': '{batch_id, items: [{index, idempotency_key, status: pending|applied|rejected|invalid, code|error}]}',
      '404': "Unknown batch, or another caller's.",
    },
  },
  {
    method: 'get',
    path: '/healthz',
    summary: 'The process is up',
    tag: 'operations',
    responses: { '200': '{status: "ok"}' },
  },
  {
    method: 'get',
    path: '/readyz',
    summary: 'PostgreSQL and Kafka answer',
    tag: 'operations',
    responses: { '200': 'Ready.', '503': 'Not ready.' },
  },
  {
    method: 'get',
    path: '/metrics',
    summary: 'Prometheus metrics',
    tag: 'operations',
    responses: { '200': 'text/plain' },
  },
];

export function openApiDocument(schemas: HttpSchemas): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of OPERATIONS) {
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      summary: op.summary,
      tags: [op.tag],
      ...(op.auth ? { security: [{ bearer: [] }] } : {}),
      parameters: [...queryParameters(op, schemas), ...headerParameters(op), ...pathParameters(op)],
      ...(op.body
        ? { requestBody: { required: true, content: { 'application/json': { schema: jsonSchema(schemas[op.body]) } } } }
        : {}),
      responses: Object.fromEntries(
        Object.entries(op.responses).map(([status, description]) => [status, { description }]),
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

function jsonSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
}

function queryParameters(op: Operation, schemas: HttpSchemas) {
  if (!op.query) return [];
  const schema = jsonSchema(schemas[op.query]) as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(schema.properties ?? {}).map(([name, property]) => ({
    name,
    in: 'query',
    required: schema.required?.includes(name) ?? false,
    schema: property,
  }));
}

function headerParameters(op: Operation) {
  if (op.tag !== 'commands') return [];
  return [
    {
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
      description: 'Makes retries safe: the same key and body give the same answer.',
    },
    {
      name: 'Prefer',
      in: 'header',
      required: false,
      schema: { type: 'string', enum: ['respond-async'] },
      description: 'Answer 202 as soon as Kafka accepted the command.',
    },
  ];
}

function pathParameters(op: Operation) {
  return op.path.includes('{id}') ? [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }] : [];
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

export function registerDocsRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const document = openApiDocument(ctx.schemas);
  app.get('/openapi.json', async () => document);
  app.get('/docs', async (_request, reply) => reply.header('content-type', 'text/html; charset=utf-8').send(DOCS_PAGE));
  app.get('/docs/static/:file', async (request, reply) => {
    const file = (request.params as { file: string }).file;
    const type = SWAGGER_FILES.get(file);
    if (!type) return reply.code(404).send({ code: 'not_found', message: 'Nothing exists at this address.' });
    return reply
      .header('content-type', type)
      .header('cache-control', 'public, max-age=86400')
      .send(await readFile(path.join(SWAGGER_UI_DIR, file)));
  });
}
