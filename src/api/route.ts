/**
 * How a route describes itself. Each route is registered with the zod schemas it validates its
 * body, query and path with (Fastify's route `schema`, through a zod type provider), its summary,
 * tag, who may call it and what it answers; the OpenAPI document (openapi.ts) is generated from
 * the routes as registered, so nothing lists the paths twice and a documented bound is the
 * enforced one. Validation refuses with the service's own 400 (`validation_failed`, naming every
 * bad field), after authentication: an unauthenticated caller learns nothing of the body rules.
 */
import type { FastifyInstance, FastifyRequest, FastifySchemaCompiler, FastifyTypeProvider } from 'fastify';
import type { z } from 'zod';
import { ApiError } from '../errors.ts';
import type { ApiContext } from './context.ts';
import { authenticate } from './http.ts';
import type { Principal } from '../commands/permissions.ts';

/** Request parts typed by their zod schemas' outputs (what the validator hands the handler). */
export interface ZodTypeProvider extends FastifyTypeProvider {
  validator: this['schema'] extends z.ZodType ? z.output<this['schema']> : unknown;
  serializer: this['schema'] extends z.ZodType ? z.input<this['schema']> : unknown;
}

export type Tag = 'auth' | 'commands' | 'reads' | 'reconciliation' | 'operations';

/** A header a route reads itself (checked in its handler with `schema`), documented as a parameter. */
export interface HeaderDoc {
  readonly name: string;
  readonly schema: z.ZodType;
  readonly description: string;
}

/** What the OpenAPI document says of a route beside its schemas; kept in the route's `config`. */
export interface RouteDoc {
  readonly summary: string;
  readonly tag: Tag;
  /** Whether it needs a bearer token (it is authenticated before validation). */
  readonly auth: boolean;
  /**
   * Authenticate as the request arrives, before its body is read: for a route that takes a large
   * body, so a caller without a token cannot make the gateway read one.
   */
  readonly authBeforeBody?: boolean;
  readonly responses: Readonly<Record<string, string>>;
  readonly headers?: readonly HeaderDoc[];
  /** Left out of the document (the Swagger UI's own files). */
  readonly hidden?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The authenticated caller of a route with `auth`; null elsewhere. */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    doc?: RouteDoc;
  }
}

/** A registered route, as the OpenAPI document needs it; `doc` null for one that does not describe itself. */
export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
  readonly body?: z.ZodType;
  readonly querystring?: z.ZodType;
  readonly params?: z.ZodType;
  readonly doc: RouteDoc | null;
}

/** The service's 400 for a zod failure: every bad field named (at most 20), as parseOr400 does. */
export function validationError(error: z.ZodError): ApiError {
  const details = error.issues
    .slice(0, 20)
    .map((issue) => ({ field: issue.path.join('.') || '(body)', message: issue.message }));
  const fields = [...new Set(details.map((d) => d.field))];
  return new ApiError('validation_failed', `Invalid ${fields.join(', ')}.`, details);
}

/**
 * Validates with the route's zod schemas; the parsed output (amounts as bigint, defaults filled)
 * replaces the raw part. Headers are documented, and checked by the handler that reads them.
 */
const zodValidatorCompiler: FastifySchemaCompiler<z.ZodType> = ({ schema, httpPart }) => {
  if (httpPart === 'headers') return () => true;
  return (data: unknown) => {
    const result = schema.safeParse(data ?? {});
    return result.success ? { value: result.data } : { error: validationError(result.error) };
  };
};

/**
 * Sets the app up for self-describing routes: the zod validator, authentication before
 * validation where a route asks for it, and the registry the OpenAPI document is made from.
 */
export function describeRoutes(app: FastifyInstance, ctx: ApiContext): RegisteredRoute[] {
  const routes: RegisteredRoute[] = [];
  app.setValidatorCompiler(zodValidatorCompiler);
  app.decorateRequest('principal', null);
  app.addHook('onRoute', (route) => {
    const doc = route.config?.doc ?? null;
    const schema = (route.schema ?? {}) as { body?: z.ZodType; querystring?: z.ZodType; params?: z.ZodType };
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) if (method !== 'HEAD') routes.push({ method, url: route.url, ...schema, doc });
    if (doc?.auth && doc.authBeforeBody) route.onRequest = [authenticating(ctx), ...[route.onRequest ?? []].flat()];
    else if (doc?.auth) {
      const hooks = [route.preValidation ?? []].flat();
      route.preValidation = [authenticating(ctx), ...hooks];
    }
  });
  return routes;
}

function authenticating(ctx: ApiContext) {
  return async (request: FastifyRequest) => {
    request.principal = await authenticate(request, ctx);
  };
}

/** The caller of an authenticated route. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new ApiError('unauthorized');
  return request.principal;
}
