/** Cache metrics (prom-client), registered once per proxy on its registry, plus plain totals for `cache-stats`. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export type CacheEvent = 'hits' | 'misses' | 'stale' | 'bypass' | 'evictions' | 'purged';

export class CacheMetrics {
  readonly totals: Record<CacheEvent, number> = { hits: 0, misses: 0, stale: 0, bypass: 0, evictions: 0, purged: 0 };
  private readonly counters: Record<CacheEvent, Counter>;
  readonly bytes: Gauge;
  readonly entries: Gauge;
  readonly fillSeconds: Histogram;

  constructor(registry: Registry) {
    const registers = [registry];
    const c = (name: string, help: string): Counter => new Counter({ name, help, registers });
    this.counters = {
      hits: c('weir_cache_hits_total', 'Responses served from the cache (fresh or revalidated)'),
      misses: c('weir_cache_misses_total', 'Cacheable requests sent to the origin'),
      stale: c('weir_cache_stale_total', 'Stale responses served: the origin failed (stale-if-error) or a background revalidation runs (stale-while-revalidate)'),
      bypass: c('weir_cache_bypass_total', 'Requests the cache does not answer (methods other than GET/HEAD)'),
      evictions: c('weir_cache_evictions_total', 'Entries evicted to stay under the size cap'),
      purged: c('weir_cache_purged_total', 'Entries removed by PURGE or by an unsafe request'),
    };
    this.bytes = new Gauge({ name: 'weir_cache_bytes', help: 'Bytes held by the cache', registers });
    this.entries = new Gauge({ name: 'weir_cache_entries', help: 'Entries held by the cache', registers });
    this.fillSeconds = new Histogram({ name: 'weir_cache_fill_seconds', help: 'Time from the origin response head to a published entry', registers, buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30] });
  }

  count(e: CacheEvent, n = 1): void {
    if (n <= 0) return;
    this.totals[e] += n;
    this.counters[e].inc(n);
  }
}
