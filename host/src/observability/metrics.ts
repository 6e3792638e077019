/**
 * Proxy metrics with prom-client. One registry per Weir instance so tests (and several
 * instances in one process) don't share counters. Label sets are small and bounded:
 * route names, methods, status classes' exact codes, error codes.
 */
import { Registry, Counter, Gauge, Histogram, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class ProxyMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'route' | 'method' | 'status'>;
  readonly requestDuration: Histogram<'route'>;
  readonly upstreamDuration: Histogram<'upstream'>;
  readonly inFlight: Gauge;
  readonly connections: Gauge<'listener'>;
  readonly connectionsTotal: Counter<'listener'>;
  readonly reloads: Counter<'result'>;
  readonly errors: Counter<'code'>;
  readonly retries: Counter<'upstream'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registry = new Registry();
    this.registry = registry;
    const registers = [registry];
    this.requests = new Counter({ name: 'weir_requests_total', help: 'Requests completed, by route, method and status', labelNames: ['route', 'method', 'status'], registers });
    this.requestDuration = new Histogram({ name: 'weir_request_duration_seconds', help: 'Time from request head to the end of the response', labelNames: ['route'], buckets: LATENCY_BUCKETS, registers });
    this.upstreamDuration = new Histogram({ name: 'weir_upstream_duration_seconds', help: 'Time from dispatch to the upstream response head', labelNames: ['upstream'], buckets: LATENCY_BUCKETS, registers });
    this.inFlight = new Gauge({ name: 'weir_requests_in_flight', help: 'Requests being processed', registers });
    this.connections = new Gauge({ name: 'weir_connections', help: 'Open downstream connections', labelNames: ['listener'], registers });
    this.connectionsTotal = new Counter({ name: 'weir_connections_total', help: 'Downstream connections accepted', labelNames: ['listener'], registers });
    this.reloads = new Counter({ name: 'weir_config_reloads_total', help: 'Config reloads, by result', labelNames: ['result'], registers });
    this.errors = new Counter({ name: 'weir_errors_total', help: 'Errors by stable code', labelNames: ['code'], registers });
    this.retries = new Counter({ name: 'weir_upstream_retries_total', help: 'Upstream request retries', labelNames: ['upstream'], registers });
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'weir_process_' });
  }
}
