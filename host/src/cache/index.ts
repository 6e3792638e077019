/**
 * The proxy's HTTP cache: one store per proxy, kept across reloads while its size is
 * unchanged, and a cache phase for every route with `policies { cache {} }`.
 */
import type { Registry } from 'prom-client';
import type { ConfigNode, RouteConfig, WeirConfig } from '../config/types.ts';
import type { Phase } from '../pipeline/phases.ts';
import { child } from '../filters/settings.ts';
import { CacheMetrics } from './metrics.ts';
import { cachePhase, type BackgroundOrigin } from './phase.ts';
import { cacheSettings, routeCacheSettings, type CacheSettings } from './settings.ts';
import { CacheStore, type DiskOptions } from './store.ts';
import { WeirError } from '../errors.ts';

export class HttpCache {
  private readonly registry: Registry;
  private metrics: CacheMetrics | undefined;
  private store: CacheStore | undefined;

  constructor(registry: Registry) {
    this.registry = registry;
  }

  /**
   * The cache phases of a config's routes (route name → phase); empty when nothing caches.
   * `origin` sends the background revalidations of stale-while-revalidate.
   */
  phases(config: WeirConfig, origin?: BackgroundOrigin): Map<string, Phase> {
    const out = new Map<string, Phase>();
    const settings = cacheSettings(config.cache);
    if (!settings.enabled) return out;
    for (const r of config.routes) {
      const rs = routeCacheSettings(routeCacheNode(r));
      if (!rs) continue;
      this.metrics ??= new CacheMetrics(this.registry);
      if (!this.store || this.store.layout !== layoutOf(settings)) this.store = storeFor(settings, this.metrics);
      out.set(r.name, cachePhase(r.name, rs, { store: this.store, settings, metrics: this.metrics, upstream: r.upstream, origin }));
    }
    return out;
  }

  /**
   * Removes entries for the admin API (`POST /api/v1/cache/purge`): all of them, by tag, by
   * key prefix (`scheme://host/path`), or one URL with every variant (key headers included).
   */
  purge(spec: { all: true } | { tags: readonly string[] } | { prefix: string } | { url: string }): number {
    const store = this.store;
    if (!store) return 0;
    let n = 0;
    if ('all' in spec) n = store.clear();
    else if ('tags' in spec) for (const t of spec.tags) n += store.deleteTag(t);
    else if ('prefix' in spec) n = store.deletePrefix(spec.prefix);
    else n = store.deletePrimary(spec.url) + store.deletePrefix(`${spec.url}\u0000`);
    this.metrics?.count('purged', n);
    return n;
  }

  /** What `builtin-handler "cache-stats"` answers. */
  stats(): unknown {
    const s = this.store?.stats() ?? { entries: 0, bytes: 0, maxBytes: 0, fillsInProgress: 0 };
    return { ...s, ...(this.metrics?.totals ?? {}) };
  }
}

function diskOptions(s: CacheSettings): DiskOptions | undefined {
  if (s.backend === 'memory') return undefined;
  if (s.diskPath === undefined) throw new WeirError('WEIR_ERR_CONFIG_MISSING', `cache backend "${s.backend}" needs \`disk-path\``);
  // hybrid: an eighth of max-size keeps hot bodies in memory too.
  return { dir: s.diskPath, shards: s.diskShards, hotBytes: s.backend === 'hybrid' ? Math.floor(s.maxBytes / 8) : 0 };
}

function layoutOf(s: CacheSettings): string {
  const d = diskOptions(s);
  return d ? `${s.maxBytes}:${d.dir}:${d.shards}:${d.hotBytes}` : `${s.maxBytes}`;
}

function storeFor(s: CacheSettings, m: CacheMetrics): CacheStore {
  return new CacheStore(s.maxBytes, m, diskOptions(s));
}

function routeCacheNode(r: RouteConfig): ConfigNode | undefined {
  const p = r.node ? child(r.node, 'policies') : undefined;
  return p ? child(p, 'cache') : undefined;
}
