import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { gatewayMetrics } from '../../src/api/gateway.ts';
import { registerConsumerMetrics } from '../../src/consumer/metrics.ts';
import { createWorkerStats } from '../../src/consumer/worker-context.ts';

/** Every metric family the processes export: the gateway's, with the consumer's beside it as in npm start. */
function exported(): Set<string> {
  const client = { published: 0, repliesMatched: 0, timeouts: 0, waiting: 0, repliesMalformed: 0 };
  const metrics = gatewayMetrics(client);
  registerConsumerMetrics(metrics, createWorkerStats());
  metrics.observeRequest('GET', '/healthz', 200, 0.001);
  return new Set([...metrics.render().matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
}

/** Metric names in PromQL, histogram series folded into their family. */
function named(text: string): string[] {
  const names = [...text.matchAll(/\b((?:balance|http)_[a-z_]+)\b/g)].map((m) =>
    m[1]!.replace(/_(bucket|sum|count)$/, ''),
  );
  return [...new Set(names)];
}

describe('the monitoring in deploy/', () => {
  it('alerts only on metrics that are exported, and covers the stuck partition, lag, dead letters and errors', async () => {
    const rules = parse(await readFile(new URL('../../deploy/prometheus/alerts.yml', import.meta.url), 'utf8')) as {
      groups: Array<{ rules: Array<{ alert: string; expr: string }> }>;
    };
    const all = rules.groups.flatMap((g) => g.rules);
    const metrics = exported();
    for (const rule of all)
      for (const name of named(rule.expr)) expect(metrics.has(name), `${rule.alert}: ${name}`).toBe(true);
    expect(all.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'BalancePartitionStuck',
        'BalanceConsumerLagGrowing',
        'BalanceDeadLetters',
        'BalanceHttpErrors',
      ]),
    );
  });

  it('charts only metrics that are exported', async () => {
    const dashboard = JSON.parse(
      await readFile(new URL('../../deploy/grafana/balance-service.json', import.meta.url), 'utf8'),
    ) as { panels: Array<{ title: string; targets: Array<{ expr: string }> }> };
    const metrics = exported();
    const charted = dashboard.panels.flatMap((p) =>
      p.targets.flatMap((t) => named(t.expr).map((name) => [p.title, name] as const)),
    );
    expect(charted.length).toBeGreaterThan(10);
    for (const [title, name] of charted) expect(metrics.has(name), `${title}: ${name}`).toBe(true);
  });
});
