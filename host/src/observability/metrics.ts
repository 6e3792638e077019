/**
 * Proxy metrics with prom-client. One registry per Weir instance so tests (and several
 * instances in one process) don't share counters. Label sets are small and bounded:
 * route names, methods, status classes' exact codes, error codes.
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics, type OpenMetricsContentType } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
  exemplar?: { labelSet: Record<string, string>; value: number; timestamp: number };
}

/** An exemplar: the trace of one observation in a bucket (OpenMetrics shows it next to the bucket). */
interface Exemplar {
  traceId: string;
  value: number;
  /** Seconds since the epoch. */
  timestamp: number;
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
  readonly labelNames: readonly string[];
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
  /** The last traced observation per bucket (+Inf last); allocated on the first one. */
  exemplars: Array<Exemplar | undefined> | undefined;

  constructor(buckets: readonly number[], labels: Record<string, string>) {
    this.buckets = buckets;
    this.labels = labels;
    this.counts = new Float64Array(buckets.length);
  }

  /** Observes `v`; with a trace id, that trace becomes the bucket's exemplar. */
  observe(v: number, traceId?: string): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    if (i < b.length) this.counts[i]!++;
    this.sum += v;
    this.count++;
    if (traceId !== undefined) (this.exemplars ??= new Array(b.length + 1))[i] = { traceId, value: v, timestamp: Date.now() / 1000 };
  }
}

class FastHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: readonly string[];
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
      const ex = s.exemplars;
      const exemplar = (i: number): Pick<MetricValue, 'exemplar'> => {
        const e = ex?.[i];
        return e === undefined ? {} : { exemplar: { labelSet: { trace_id: e.traceId }, value: e.value, timestamp: e.timestamp } };
      };
      this.buckets.forEach((le, i) => {
        acc += s.counts[i]!;
        values.push({ labels: { ...s.labels, le }, value: acc, metricName: `${this.name}_bucket`, ...exemplar(i) });
      });
      values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${this.name}_bucket`, ...exemplar(this.buckets.length) });
      values.push({ labels: s.labels, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: s.labels, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }
}

/** What the per-target gauges read of one target at scrape time. */
export interface TargetState {
  readonly upstream: string;
  readonly address: string;
  readonly healthy: boolean;
  readonly inFlight: number;
  /** Drained through the admin API: takes no new requests. */
  readonly draining: boolean;
  /** Passively ejected (outlier-detection, or repeated connect failures). */
  readonly ejected: boolean;
}

/** An upstream with a `circuit-breaker` or `outlier-detection`, for their gauges. */
export interface UpstreamHealthState {
  readonly upstream: string;
  readonly circuit: 'closed' | 'open' | 'half-open' | undefined;
  /** undefined without outlier-detection. */
  readonly panic: boolean | undefined;
}

const CIRCUIT_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

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
  readonly targetRequests: FastCounter;
  readonly targetErrors: FastCounter;
  readonly targetDuration: FastHistogram;
  readonly targetEjections: FastCounter;
  /** The targets of the running snapshot, read at scrape time (ProxyCore sets it). */
  targets: () => Iterable<TargetState> = () => [];
  /** Upstreams with a breaker or outlier detection, read at scrape time (ProxyCore sets it). */
  upstreamHealth: () => Iterable<UpstreamHealthState> = () => [];

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
    const target = ['upstream', 'target'];
    this.targetRequests = new FastCounter('weir_upstream_target_requests_total', 'Upstream attempts sent to each target (a retry counts again)', target, registry);
    this.targetErrors = new FastCounter('weir_upstream_target_errors_total', 'Failed attempts per target, by Weir error code (connect, reset, timeout...), and `5xx` for responses with a 5xx status', [...target, 'code'], registry);
    this.targetDuration = new FastHistogram('weir_upstream_target_duration_seconds', 'Time from dispatch to the response head, per target', target, LATENCY_BUCKETS, registry);
    this.targetEjections = new FastCounter('weir_upstream_target_ejections_total', 'Times a target was ejected: by outlier-detection, or without it after repeated connect failures', target, registry);
    const metrics = this;
    new Gauge({
      name: 'weir_upstream_target_healthy', help: '1 while a target takes requests (active health checks pass and it is not ejected), else 0', labelNames: target, registers,
      // Every proxy thread sees the same shared health state: merging takes one, not the sum.
      aggregator: 'max',
      collect() {
        this.reset();
        for (const t of metrics.targets()) this.labels(t.upstream, t.address).set(t.healthy ? 1 : 0);
      },
    });
    new Gauge({
      name: 'weir_upstream_target_in_flight', help: 'Requests in flight to each target', labelNames: target, registers,
      collect() {
        this.reset();
        for (const t of metrics.targets()) this.labels(t.upstream, t.address).set(t.inFlight);
      },
    });
    new Gauge({
      name: 'weir_upstream_target_draining', help: '1 while a target is drained through the admin API (no new requests; in-flight ones finish), else 0', labelNames: target, registers,
      aggregator: 'max',
      collect() {
        this.reset();
        for (const t of metrics.targets()) this.labels(t.upstream, t.address).set(t.draining ? 1 : 0);
      },
    });
    new Gauge({
      name: 'weir_upstream_target_ejected', help: '1 while a target is passively ejected (outlier-detection, or repeated connect failures), else 0; outlier detection is per proxy thread, so 1 if any thread ejected it', labelNames: target, registers,
      aggregator: 'max',
      collect() {
        this.reset();
        for (const t of metrics.targets()) this.labels(t.upstream, t.address).set(t.ejected ? 1 : 0);
      },
    });
    new Gauge({
      name: 'weir_upstream_circuit_state', help: 'The upstream circuit-breaker: 0 closed, 1 half-open, 2 open (the worst over proxy threads)', labelNames: ['upstream'], registers,
      aggregator: 'max',
      collect() {
        this.reset();
        for (const u of metrics.upstreamHealth()) if (u.circuit !== undefined) this.labels(u.upstream).set(CIRCUIT_VALUE[u.circuit]);
      },
    });
    new Gauge({
      name: 'weir_upstream_panic', help: '1 while an upstream with outlier-detection is in panic mode (too few targets available: requests go to every target), else 0', labelNames: ['upstream'], registers,
      aggregator: 'max',
      collect() {
        this.reset();
        for (const u of metrics.upstreamHealth()) if (u.panic !== undefined) this.labels(u.upstream).set(u.panic ? 1 : 0);
      },
    });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'weir_process_' });
  }
}

/**
 * The registry's text for a scrape: OpenMetrics (with exemplars) when the scraper asks for it
 * in Accept, else Prometheus text. prom-client renames counters in place for OpenMetrics, so
 * the OpenMetrics registry holds views of the metrics, never the metrics themselves.
 */
export async function renderMetrics(registry: Registry, accept: string | string[] | undefined): Promise<{ contentType: string; text: string }> {
  const wanted = Array.isArray(accept) ? accept.join(',') : (accept ?? '');
  if (!wanted.includes('application/openmetrics-text')) return { contentType: registry.contentType, text: await registry.metrics() };
  const om = new Registry<OpenMetricsContentType>();
  om.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  for (const m of registry.getMetricsAsArray() as unknown as Array<{ name: string; help: string; type: string; aggregator: string; get(): Promise<{ name: string }> | { name: string } }>) {
    const view = {
      name: m.name,
      help: m.help,
      type: m.type,
      aggregator: m.aggregator,
      get: async () => ({ ...(await m.get()), name: view.name }),
    };
    om.registerMetric(view as never);
  }
  return { contentType: om.contentType, text: await om.metrics() };
}

/** The counter of spans the tracing exporter sent, shared by every tracer of a registry. */
export function tracingExportCounter(registry: Registry): Counter<'result'> {
  const existing = registry.getSingleMetric('weir_tracing_spans_exported_total');
  if (existing) return existing as Counter<'result'>;
  return new Counter({ name: 'weir_tracing_spans_exported_total', help: 'Spans handed to the OTLP endpoint, by result (ok, error: the batch was dropped)', labelNames: ['result'], registers: [registry] });
}
