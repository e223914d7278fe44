/**
 * A small Prometheus registry: request counts and latency histograms by route and status, plus
 * gauges read at scrape time from the command client and, when in-process, the consumer.
 * The label sets are bounded: routes are the registered patterns, never raw URLs.
 */
const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

interface Histogram {
  counts: number[];
  sum: number;
  count: number;
}

export type Gauge = () => Array<{ labels?: Record<string, string>; value: number }>;

export class Metrics {
  private readonly requests = new Map<string, Histogram>();
  private readonly gauges = new Map<string, { help: string; type: 'gauge' | 'counter'; read: Gauge }>();

  observeRequest(method: string, route: string, status: number, seconds: number): void {
    const key = JSON.stringify([method, route, String(status)]);
    let histogram = this.requests.get(key);
    if (!histogram) {
      histogram = { counts: LATENCY_BUCKETS_S.map(() => 0), sum: 0, count: 0 };
      this.requests.set(key, histogram);
    }
    LATENCY_BUCKETS_S.forEach((bound, i) => {
      if (seconds <= bound) histogram.counts[i]! += 1;
    });
    histogram.sum += seconds;
    histogram.count += 1;
  }

  /** Registers a value read at scrape time. */
  register(name: string, help: string, type: 'gauge' | 'counter', read: Gauge): void {
    this.gauges.set(name, { help, type, read });
  }

  render(): string {
    const lines = [
      '# HELP http_requests_total HTTP requests by route and status.',
      '# TYPE http_requests_total counter',
    ];
    const histogramLines = [
      '# HELP http_request_duration_seconds HTTP request latency.',
      '# TYPE http_request_duration_seconds histogram',
    ];
    for (const [key, h] of this.requests) {
      const [method, route, status] = JSON.parse(key) as [string, string, string];
      const labels = `method="${method}",route="${escapeLabel(route)}",status="${status}"`;
      lines.push(`http_requests_total{${labels}} ${h.count}`);
      LATENCY_BUCKETS_S.forEach((bound, i) => {
        histogramLines.push(`http_request_duration_seconds_bucket{${labels},le="${bound}"} ${h.counts[i]}`);
      });
      histogramLines.push(`http_request_duration_seconds_bucket{${labels},le="+Inf"} ${h.count}`);
      histogramLines.push(`http_request_duration_seconds_sum{${labels}} ${h.sum}`);
      histogramLines.push(`http_request_duration_seconds_count{${labels}} ${h.count}`);
    }
    lines.push(...histogramLines);
    for (const [name, gauge] of this.gauges) {
      lines.push(`# HELP ${name} ${gauge.help}`, `# TYPE ${name} ${gauge.type}`);
      for (const { labels, value } of gauge.read()) {
        const text = labels
          ? `{${Object.entries(labels)
              .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
              .join(',')}}`
          : '';
        lines.push(`${name}${text} ${value}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');
}

/** Whether every partition accepts the key this process signs with (signing-key-watch.ts): 1 or 0. */
export function registerSigningKeyMetric(metrics: Metrics, signingKey: { readonly accepted: boolean }): void {
  metrics.register(
    'balance_signing_key_accepted',
    '1 while every partition of the command topic accepts the key this process signs with; 0: what it signs is refused (see /readyz and the log)',
    'gauge',
    () => [{ value: signingKey.accepted ? 1 : 0 }],
  );
}

/** The Kafka requests this process sent, by API (see kafkaRequestsSent in kafka/client.ts). */
export function registerKafkaRequestMetrics(metrics: Metrics, sent: ReadonlyMap<string, number>): void {
  metrics.register(
    'balance_kafka_requests_total',
    'Requests this process sent to Kafka brokers, by API.',
    'counter',
    () => [...sent].map(([api, value]) => ({ labels: { api }, value })),
  );
}
