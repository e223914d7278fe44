/** /healthz (the process is up), /readyz (PostgreSQL and Kafka answer), /metrics (Prometheus). */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';

export function registerOperationRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const report = await ctx.readiness();
    return reply.code(report.ready ? 200 : 503).send(report);
  });
  // With METRICS_HOST/METRICS_PORT set, /metrics lives on its own listener, not beside the API.
  if (ctx.config.http.metrics) return;
  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(ctx.metrics.render()),
  );
}
