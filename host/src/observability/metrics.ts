/**
 * Proxy metrics with prom-client. One registry per Weir instance so tests (and several
 * instances in one process) don't share counters. Label sets are small and bounded:
 * route names, methods, status classes' exact codes, error codes.
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/**
 * Counters and histograms for the per-request metrics. prom-client hashes a label set on
 * every observation (even through a `labels()` child); these keep one plain record per
 * label set, found by a string key, and hand prom-client the usual values at scrape time.
 */
class FastCounter {
  readonly name: string;
  readonly help: string;
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly labelNames: readonly string[];
  private readonly series = new Map<string, { labels: Record<string, string>; value: number }>();

  constructor(name: string, help: string, labelNames: readonly string[], registry: Registry) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    registry.registerMetric(this as never);
  }

  /** The series for these label values (same order as labelNames). */
  child(...values: string[]): { value: number } {
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (s === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      this.series.set(key, (s = { labels, value: 0 }));
    }
    return s;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: [...this.series.values()].map((s) => ({ labels: s.labels, value: s.value })) };
  }

  reset(): void {
    this.series.clear();
  }
}

class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  private readonly buckets: readonly number[];
  readonly labels: Record<string, string>;

  constructor(buckets: readonly number[], labels: Record<string, string>) {
    this.buckets = buckets;
    this.labels = labels;
    this.counts = new Float64Array(buckets.length);
  }

  observe(v: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

class FastHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly labelNames: readonly string[];
  private readonly buckets: readonly number[];
  private readonly series = new Map<string, HistogramSeries>();

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[], registry: Registry) {
    this.name = name;
    this.help = help;
    this.labelNames = labelNames;
    this.buckets = buckets;
    registry.registerMetric(this as never);
  }

  child(...values: string[]): HistogramSeries {
    const key = values.join('\u0000');
    let s = this.series.get(key);
    if (s === undefined) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      this.series.set(key, (s = new HistogramSeries(this.buckets, labels)));
    }
    return s;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const s of this.series.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ labels: { ...s.labels, le }, value: acc, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }
}

export class ProxyMetrics {
  readonly registry: Registry;
  readonly requests: FastCounter;
  readonly requestDuration: FastHistogram;
  readonly upstreamDuration: FastHistogram;
  readonly inFlight: Gauge;
  readonly connections: Gauge<'listener'>;
  readonly connectionsTotal: Counter<'listener'>;
  readonly reloads: Counter<'result'>;
  readonly errors: Counter<'code'>;
  readonly retries: Counter<'upstream'>;
  readonly logSinkErrors: Counter<'sink'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registry = new Registry();
    this.registry = registry;
    const registers = [registry];
    this.requests = new FastCounter('weir_requests_total', 'Requests completed, by route, method and status', ['route', 'method', 'status'], registry);
    this.requestDuration = new FastHistogram('weir_request_duration_seconds', 'Time from request head to the end of the response', ['route'], LATENCY_BUCKETS, registry);
    this.upstreamDuration = new FastHistogram('weir_upstream_duration_seconds', 'Time from dispatch to the upstream response head', ['upstream'], LATENCY_BUCKETS, registry);
    this.inFlight = new Gauge({ name: 'weir_requests_in_flight', help: 'Requests being processed', registers });
    this.connections = new Gauge({ name: 'weir_connections', help: 'Open downstream connections', labelNames: ['listener'], registers });
    this.connectionsTotal = new Counter({ name: 'weir_connections_total', help: 'Downstream connections accepted', labelNames: ['listener'], registers });
    this.reloads = new Counter({ name: 'weir_config_reloads_total', help: 'Config reloads, by result', labelNames: ['result'], registers });
    this.errors = new Counter({ name: 'weir_errors_total', help: 'Errors by stable code', labelNames: ['code'], registers });
    this.retries = new Counter({ name: 'weir_upstream_retries_total', help: 'Upstream request retries', labelNames: ['upstream'], registers });
    this.logSinkErrors = new Counter({ name: 'weir_log_sink_errors_total', help: 'Failed writes or reopens of a log destination (main, access)', labelNames: ['sink'], registers });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'weir_process_' });
  }
}
