/**
 * The gateway's app factory: a configured Fastify instance that does not listen yet, so tests
 * can drive it with `app.inject()` and main files only wire dependencies and call `listen`.
 */
import Fastify, { type FastifyInstance, type FastifyError, type FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { ReadinessProbe } from '../health.ts';
import { API_ERRORS, ApiError, type ErrorBody } from '../errors.ts';

export interface AppDeps {
  readonly config: Config;
  readonly log: Logger;
  readonly readiness: ReadinessProbe;
}

export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    bodyLimit: deps.config.http.bodyBytesMax,
    routerOptions: { ignoreTrailingSlash: true },
    requestTimeout: deps.config.limits.replyWaitMs + 5_000,
  });
  app.setErrorHandler((error, request, reply) => {
    const { status, body } = toErrorResponse(error);
    if (status >= 500) request.log.error({ err: error }, 'request failed');
    void reply.code(status).send(body);
  });
  app.setNotFoundHandler((_request, reply) => {
    void reply.code(404).send(errorBody(new ApiError('not_found')));
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const report = await deps.readiness();
    return reply.code(report.ready ? 200 : 503).send(report);
  });
  return app;
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
  if (error instanceof SyntaxError || fastifyError.statusCode === 400) return coded('malformed_json');
  return coded('internal_error');
}

function coded(code: keyof typeof API_ERRORS) {
  const error = new ApiError(code);
  return { status: error.status, body: errorBody(error) };
}

function errorBody(error: ApiError): ErrorBody {
  return error.details === undefined
    ? { code: error.code, message: error.message }
    : { code: error.code, message: error.message, details: error.details };
}
