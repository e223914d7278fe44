/**
 * The gateway's app factory: a configured Fastify instance that does not listen yet, so tests
 * drive it with `app.inject()` and main files only wire dependencies and call `listen`.
 */
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import { inexactNumberProblem } from '../commands/json-numbers.ts';
import { isTransientDbError } from '../db/errors.ts';
import { type API_ERRORS, ApiError, type ErrorBody } from '../errors.ts';
import type { ApiContext } from './context.ts';
import { registerDocsRoutes } from './openapi.ts';
import { describeRoutes, type RegisteredRoute } from './route.ts';
import { registerAuthRoutes } from './routes/auth.ts';
import { registerCommandRoutes } from './routes/commands.ts';
import { registerBulkRoutes } from './routes/bulk.ts';
import { registerOperationRoutes } from './routes/operations.ts';
import { registerReadRoutes } from './routes/reads.ts';
import { registerStatementRoutes } from './routes/statements.ts';
import { registerChainRoutes } from './routes/chain.ts';
import { registerReconciliationRoutes } from './routes/reconciliations.ts';

export function buildApp(ctx: ApiContext): FastifyInstance {
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    bodyLimit: ctx.config.http.bodyBytesMax,
    // Only the configured proxies may tell us the client's address (it keys the login throttle).
    trustProxy: trustProxyOption(ctx.config.http.trustProxy),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    requestTimeout: ctx.config.limits.replyWaitMs + 5_000,
    // Request ids are ours, never taken from a header a client controls.
    genReqId: () => crypto.randomUUID(),
    // Fastify's two lines per request are replaced by one, and only as REQUEST_LOG says.
    logController: new LogController({ disableRequestLogging: true }),
  });
  acceptOnlyExactNumbers(app);
  const routes = describeRoutes(app, ctx);
  app.decorate('describedRoutes', routes);
  app.setErrorHandler((error, request, reply) => {
    const { status, body } = toErrorResponse(error);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((_request, reply) => {
    void reply.code(404).send(errorBody(new ApiError('not_found')));
  });
  // Every handler is counted, so a shutdown can wait for those whose clients hung up.
  app.addHook('onRoute', (route) => {
    const handler = route.handler;
    route.handler = function tracked(request, reply) {
      return ctx.inFlight.track(async () => handler.call(this, request, reply));
    };
  });
  app.addHook('onResponse', async (request, reply) => {
    ctx.metrics.observeRequest(
      request.method,
      request.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime / 1000,
    );
    logRequest(ctx, request, reply);
  });
  registerOperationRoutes(app, ctx);
  registerAuthRoutes(app, ctx);
  registerCommandRoutes(app, ctx);
  registerBulkRoutes(app, ctx);
  registerReadRoutes(app, ctx);
  registerStatementRoutes(app, ctx);
  registerChainRoutes(app, ctx);
  registerReconciliationRoutes(app, ctx);
  registerDocsRoutes(app, routes);
  return app;
}

/**
 * Fastify's own JSON parser (prototype poisoning refused), behind a check of the body's number
 * literals: one JSON.parse would round (`10.0000000000000001`) or expand (`1e2`) is a 400, not
 * a silently different amount (commands/json-numbers.ts).
 */
function acceptOnlyExactNumbers(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const problem = inexactNumberProblem(body as string);
    if (problem === null) return parseJson(request, body as string, done);
    done(new ApiError('validation_failed', 'Invalid number.', [{ field: '(body)', message: problem }]), undefined);
  });
  // Statements for reconciliation: the bytes as sent; the reader checks they are UTF-8.
  app.addContentTypeParser('text/csv', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
}

/** One line for an answered request: all of them, or only the slow ones (REQUEST_LOG). */
function logRequest(ctx: ApiContext, request: FastifyRequest, reply: FastifyReply): void {
  const { requestLog, requestLogSlowMs } = ctx.config.http;
  const slow = reply.elapsedTime >= requestLogSlowMs;
  if (requestLog === 'none' || (requestLog === 'slow' && !slow)) return;
  const line = {
    method: request.method,
    route: request.routeOptions.url ?? 'unmatched',
    status: reply.statusCode,
    ms: Math.round(reply.elapsedTime),
  };
  if (slow) request.log.warn(line, `slow request: answered after ${requestLogSlowMs} ms or more`);
  else request.log.info(line, 'request answered');
}

/** A hop count becomes the function fastify takes for it: trust the nearest `hops` proxies. */
function trustProxyOption(
  setting: boolean | number | string,
): boolean | string | ((address: string, hop: number) => boolean) {
  return typeof setting === 'number' ? (_address, hop) => hop < setting : setting;
}

/** Maps anything thrown in a handler to a status and a registry-coded body; never leaks internals. */
export function toErrorResponse(error: unknown): { status: number; body: ErrorBody } {
  if (error instanceof ApiError) return { status: error.status, body: errorBody(error) };
  const fastifyError = error as FastifyError;
  switch (fastifyError.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return coded('body_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return coded('unsupported_media_type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return coded('malformed_json');
  }
  if (isTransientDbError(error)) return coded('service_unavailable');
  if (error instanceof SyntaxError || fastifyError.statusCode === 400) return coded('malformed_json');
  if (fastifyError.statusCode === 413) return coded('body_too_large');
  if (fastifyError.statusCode === 415) return coded('unsupported_media_type');
  return coded('internal_error');
}

function coded(code: keyof typeof API_ERRORS) {
  const error = new ApiError(code);
  return { status: error.status, body: errorBody(error) };
}

function errorBody(error: ApiError): ErrorBody {
  return error.details === undefined
    ? { code: error.publicCode, message: error.message }
    : { code: error.publicCode, message: error.message, details: error.details };
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route as registered, with what it says of itself (route.ts): what /openapi.json documents. */
    describedRoutes: readonly RegisteredRoute[];
  }
}
