/** /healthz (the process is up), /readyz (PostgreSQL and Kafka answer), /metrics (Prometheus). */
import type { FastifyInstance } from 'fastify';
import type { ApiContext } from '../context.ts';

const operation = (summary: string, responses: Record<string, string>) => ({
  doc: { summary, tag: 'operations' as const, auth: false, responses },
});

export function registerOperationRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/healthz', { config: operation('The process is up', { '200': '{status: "ok"}' }) }, async () => ({
    status: 'ok',
  }));
  app.get(
    '/readyz',
    { config: operation('PostgreSQL and Kafka answer', { '200': 'Ready.', '503': 'Not ready.' }) },
    async (_request, reply) => {
      const report = await ctx.readiness();
      return reply.code(report.ready ? 200 : 503).send(report);
    },
  );
  // With METRICS_HOST/METRICS_PORT set, /metrics lives on its own listener, not beside the API.
  if (ctx.config.http.metrics) return;
  app.get('/metrics', { config: operation('Prometheus metrics', { '200': 'text/plain' }) }, async (_request, reply) =>
    reply.header('content-type', 'text/plain; version=0.0.4; charset=utf-8').send(ctx.metrics.render()),
  );
}
