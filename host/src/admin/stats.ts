/**
 * Live numbers for the admin UI, computed from the metrics registry (every thread merged):
 * per route the request rate, error rate and latency percentiles over the last interval
 * (differences of two samples of the counters and histogram buckets), per plugin hook the
 * calls, errors, fuel and latency.
 */
import type { MetricsJson } from './host.ts';

type Metric = MetricsJson[number];
type Value = Metric['values'][number] & { readonly metricName?: string };

export interface RouteStats {
  readonly route: string;
  /** Requests per second over the interval. */
  readonly rps: number;
  /** Share of the interval's requests answered 5xx (0..1). */
  readonly errorRate: number;
  /** Latency percentiles over the interval, ms (undefined: no request). */
  readonly p50?: number;
  readonly p90?: number;
  readonly p99?: number;
  readonly total: number;
}

export interface HookStats {
  readonly plugin: string;
  readonly hook: string;
  readonly calls: number;
  readonly errors: number;
  readonly fuel: number;
  /** Mean call time over the sampled calls, µs. */
  readonly meanUs?: number;
  readonly p99Us?: number;
}

/** A sample of the counters the UI derives rates from. */
export interface Sample {
  readonly at: number;
  readonly requests: ReadonlyMap<string, { total: number; errors: number }>;
  readonly buckets: ReadonlyMap<string, ReadonlyArray<[number, number]>>;
}

const valuesOf = (m: MetricsJson, name: string): readonly Value[] => (m.find((x) => x.name === name)?.values ?? []) as readonly Value[];
const label = (v: Value, k: string): string => String((v.labels as Record<string, string | number>)[k] ?? '');

export function sample(m: MetricsJson, at = Date.now()): Sample {
  const requests = new Map<string, { total: number; errors: number }>();
  for (const v of valuesOf(m, 'weir_requests_total')) {
    const r = label(v, 'route');
    const s = requests.get(r) ?? { total: 0, errors: 0 };
    s.total += v.value;
    if (Number(label(v, 'status')) >= 500) s.errors += v.value;
    requests.set(r, s);
  }
  return { at, requests, buckets: histogram(m, 'weir_request_duration_seconds', 'route') };
}

/** Cumulative buckets per series key: [upper bound in seconds, count]. */
function histogram(m: MetricsJson, name: string, ...keys: string[]): Map<string, Array<[number, number]>> {
  const out = new Map<string, Array<[number, number]>>();
  for (const v of valuesOf(m, name)) {
    if (v.metricName !== `${name}_bucket`) continue;
    const k = keys.map((x) => label(v, x)).join('\u0000');
    const le = label(v, 'le');
    const list = out.get(k) ?? [];
    list.push([le === '+Inf' ? Infinity : Number(le), v.value]);
    out.set(k, list);
  }
  for (const list of out.values()) list.sort((a, b) => a[0] - b[0]);
  return out;
}

/** The q-quantile of cumulative buckets (linear within a bucket, as Prometheus' histogram_quantile). */
export function quantile(q: number, buckets: ReadonlyArray<readonly [number, number]>): number | undefined {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      const inBucket = count - prevCount;
      return inBucket > 0 ? prevLe + ((le - prevLe) * (rank - prevCount)) / inBucket : le;
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

const ms = (s: number | undefined): number | undefined => (s === undefined ? undefined : Math.round(s * 1e5) / 100);

/** Per-route numbers over the interval between two samples (`prev` undefined: since start). */
export function routeStats(prev: Sample | undefined, cur: Sample): RouteStats[] {
  const secs = prev ? Math.max(0.001, (cur.at - prev.at) / 1000) : 1;
  const out: RouteStats[] = [];
  for (const [route, now] of cur.requests) {
    const before = prev?.requests.get(route) ?? { total: 0, errors: 0 };
    const n = Math.max(0, now.total - before.total);
    const e = Math.max(0, now.errors - before.errors);
    const b = cur.buckets.get(route) ?? [];
    const pb = prev?.buckets.get(route) ?? [];
    const delta = b.map(([le, c], i) => [le, c - (pb[i]?.[1] ?? 0)] as [number, number]);
    out.push({
      route,
      rps: Math.round((n / secs) * 100) / 100,
      errorRate: n ? Math.round((e / n) * 10000) / 10000 : 0,
      p50: ms(quantile(0.5, delta)),
      p90: ms(quantile(0.9, delta)),
      p99: ms(quantile(0.99, delta)),
      total: now.total,
    });
  }
  return out.sort((a, b) => a.route.localeCompare(b.route));
}

/** Per plugin and hook, totals since start. */
export function hookStats(m: MetricsJson): HookStats[] {
  const rows = new Map<string, { plugin: string; hook: string; calls: number; errors: number; fuel: number; sum: number; count: number }>();
  const row = (v: Value): { plugin: string; hook: string; calls: number; errors: number; fuel: number; sum: number; count: number } => {
    const plugin = label(v, 'plugin');
    const hook = label(v, 'hook');
    const k = `${plugin}\u0000${hook}`;
    let r = rows.get(k);
    if (!r) rows.set(k, (r = { plugin, hook, calls: 0, errors: 0, fuel: 0, sum: 0, count: 0 }));
    return r;
  };
  for (const v of valuesOf(m, 'weir_plugin_calls_total')) row(v).calls += v.value;
  for (const v of valuesOf(m, 'weir_plugin_errors_total')) row(v).errors += v.value;
  for (const v of valuesOf(m, 'weir_plugin_fuel_used_total')) row(v).fuel += v.value;
  for (const v of valuesOf(m, 'weir_plugin_call_duration_seconds')) {
    if (v.metricName?.endsWith('_sum')) row(v).sum += v.value;
    else if (v.metricName?.endsWith('_count')) row(v).count += v.value;
  }
  const hist = histogram(m, 'weir_plugin_call_duration_seconds', 'plugin', 'hook');
  return [...rows.entries()].map(([k, r]) => {
    const p99 = quantile(0.99, hist.get(k) ?? []);
    return {
      plugin: r.plugin,
      hook: r.hook,
      calls: r.calls,
      errors: r.errors,
      fuel: r.fuel,
      ...(r.count ? { meanUs: Math.round((r.sum / r.count) * 1e7) / 10 } : {}),
      ...(p99 !== undefined ? { p99Us: Math.round(p99 * 1e7) / 10 } : {}),
    };
  }).sort((a, b) => a.plugin.localeCompare(b.plugin) || a.hook.localeCompare(b.hook));
}
