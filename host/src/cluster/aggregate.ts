/**
 * One /metrics view over every proxy thread: each thread's registry as JSON, merged the way
 * prom-client's AggregatorRegistry merges cluster workers (counters and histograms summed,
 * per-metric aggregators honoured), plus the supervisor's own registry.
 *
 * Per-thread series (a `thread` label) where a sum hides what matters: request and
 * connection counts (is the load spread?) and the runtime metrics, which describe one
 * isolate each (heap, event loop lag) and would be meaningless summed.
 */
import { AggregatorRegistry, Registry, type PrometheusContentType } from 'prom-client';
import type { MetricsJson } from './protocol.ts';

const PER_THREAD = new Set(['weir_requests_total', 'weir_requests_in_flight', 'weir_connections', 'weir_connections_total']);

function perThread(name: string): boolean {
  return PER_THREAD.has(name) || name.startsWith('weir_process_');
}

export function labelThreads(all: ReadonlyArray<{ thread: number; metrics: MetricsJson }>): MetricsJson[] {
  return all.map(({ thread, metrics }) =>
    metrics.map((m) => (perThread(m.name)
      ? { ...m, values: m.values.map((v) => ({ ...v, labels: { ...v.labels, thread: String(thread) } })) }
      : m)),
  );
}

export async function aggregateMetrics(all: ReadonlyArray<{ thread: number; metrics: MetricsJson }>, own: Registry): Promise<string> {
  const merged = AggregatorRegistry.aggregate<PrometheusContentType>(labelThreads(all));
  return Registry.merge([merged, own]).metrics();
}
