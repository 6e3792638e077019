/**
 * The plugin runtime of one Weir instance: loads plugins named by the config, hands the
 * proxy a `Phase` per `type "wasm"` filter, and hot-swaps a plugin when its file changes.
 *
 * Plugin objects are keyed by their whole config: a reload that changes a plugin's config
 * builds a new object (requests on the old snapshot keep the old one); a reload that leaves
 * it alone reuses the loaded object and its instances.
 */
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { Registry } from 'prom-client';
import type { ConfigNode, FilterConfig, PluginConfig, WeirConfig } from '../../../host/src/config/types.ts';
import { DEFAULTS as D } from '../../../host/src/config/defaults.ts';
import { numberArg, stringArg } from '../../../host/src/filters/settings.ts';
import { MemcachedStore } from '../../../host/src/store/memcached.ts';
import { FallbackStore, RedisStore } from '../../../host/src/store/redis.ts';
import { WeirError } from '../../../host/src/errors.ts';
import type { FilterRegistry } from '../../../host/src/filters/registry.ts';
import type { Logger } from '../../../host/src/observability/logger.ts';
import type { Phase } from '../../../host/src/pipeline/phases.ts';
import { LocalStore } from '../../../host/src/store/local.ts';
import { SharedStore, createSharedBuffer } from '../../../host/src/store/shared.ts';
import type { Store } from '../../../host/src/store/store.ts';
import { HostServices } from './host-services.ts';
import { PluginMetrics } from './metrics.ts';
import { WasmPlugin } from './plugin.ts';
import { wasmPhase } from './wasm-phase.ts';
import { FIRST_PARTY_FILTERS, LB_ALGORITHMS, balancerPluginConfig, filterPluginConfig, wafPhase } from './first-party.ts';
import { wafBody } from '../../../host/src/config/waf.ts';
import { WorkerPool, combineWorkerPhases, workerMemberPhase, type WorkerMemberPhase } from './worker-phase.ts';

export interface RuntimeOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  /** The default store (`backend "local"`): a SharedStore when proxy threads share state. */
  readonly store?: Store;
  /** Called after a hot swap changed which hooks a plugin implements (the chains must be rebuilt). */
  readonly onHooksChanged?: () => void;
}

/** How long a worker pool of a plugin dropped by a reload stays up for requests in flight. */
const RETIRED_POOL_GRACE_MS = 30_000;

const keyOf = (pc: PluginConfig): string => JSON.stringify({ ...pc, loc: undefined, configLoc: undefined });

export class PluginRuntime {
  readonly logger: Logger;
  readonly services: HostServices;
  readonly metrics: PluginMetrics;
  private readonly plugins = new Map<string, WasmPlugin>();
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly swapping = new Map<string, NodeJS.Timeout>();
  private readonly onHooksChanged: (() => void) | undefined;
  private readonly ownStore: Store | undefined;
  private readonly registry: Registry;
  /** Remote stores by connection settings, shared by the filters that name the same ones. */
  private readonly stores = new Map<string, Store>();
  private readonly storeIds = new WeakMap<Store, string>();
  /** Resolves when the last hot swap finished (tests and tools wait on it). */
  lastSwap: Promise<unknown> = Promise.resolve();

  constructor(opts: RuntimeOptions) {
    this.logger = opts.logger;
    this.ownStore = opts.store ? undefined : new LocalStore();
    this.services = new HostServices({ logger: opts.logger, registry: opts.registry, store: opts.store ?? this.ownStore! });
    this.metrics = new PluginMetrics(opts.registry);
    this.registry = opts.registry;
    this.onHooksChanged = opts.onHooksChanged;
  }

  /**
   * Worker thread pools: one per isolated plugin (by config key), and one per run of
   * consecutive worker plugins in a chain (by the run's keys), so a run costs one round trip
   * per phase. A plugin that hogs its threads or times out delays and fails only requests of
   * chains it is in, and is the only one blamed (the worker reports the member running).
   */
  private readonly workers = new Map<string, WorkerPool>();
  private workerSab: SharedArrayBuffer | undefined;

  /**
   * The memory worker threads build their store on, so `counter-add` and the other store
   * calls are exact across them: the proxy threads' SharedStore when there is one, else one
   * made for the worker threads of this runtime.
   */
  private workerStore(): SharedArrayBuffer {
    const s = this.services.store;
    if (s instanceof SharedStore) return s.sab;
    this.workerSab ??= createSharedBuffer();
    return this.workerSab;
  }

  /** Worker plugins whose current version the worker threads have. */
  private readonly inWorkers = new WeakSet<WasmPlugin>();

  /** Registers the `wasm` filter type, and the merging of consecutive worker plugins. */
  register(filters: FilterRegistry): void {
    filters.register('wasm', (filter, env) => this.phaseFor(filter, env.config));
    filters.combine = (phases) => combineWorkerPhases(phases, this.logger, (run) => this.runPool(run));
    for (const type of FIRST_PARTY_FILTERS) {
      // A rate-limit filter's backend keys choose its store (local, shared, Redis, memcached).
      filters.register(type, async (filter) => {
        const plugin = await this.plugin(filterPluginConfig(filter), type === 'rate-limit' ? this.storeFor(filter.settings) : undefined);
        // Inline, like a `wasm` filter's: this thread runs its timer (jwt's JWKS refresh).
        plugin.startTicks();
        const phase = wasmPhase(filter, plugin);
        // The WAF buffers request bodies as its body-inspection block says.
        return type === 'waf' ? wafPhase(phase, wafBody(filter.settings)) : phase;
      }, {
        // geo tags requests with the country it looked up; a client must not be able to.
        assertsRequestHeaders: type === 'geo' ? ['x-geoip-country'] : [],
      });
    }
    filters.balancer = async (up) => {
      const pc = balancerPluginConfig(up);
      if (!pc) {
        if (up.targets.length > 1 && !LB_ALGORITHMS.has(up.loadBalancing)) {
          // The config refuses such names; a config built in code must not be balanced by something else quietly.
          throw new WeirError('WEIR_ERR_CONFIG_UNSUPPORTED', `upstream ${up.name}: no balancer runs load-balancing "${up.loadBalancing}"`);
        }
        return undefined;
      }
      const filter = { name: `lb:${up.name}`, type: 'lb', failureMode: 'open' as const, plugin: undefined, settings: { name: 'lb', args: [], props: {}, children: [], loc: up.loc }, loc: up.loc };
      return wasmPhase(filter, await this.plugin(pc));
    };
  }

  /** The pool a run of consecutive worker members shares: a lone plugin's own, or the run's. */
  private runPool(run: readonly WorkerMemberPhase[]): WorkerPool {
    const keys = [...new Set(run.map((m) => m.worker.key))];
    if (keys.length === 1) return run[0]!.worker.pool;
    const key = `run\u0000${keys.join('\u0000')}`;
    let pool = this.workers.get(key);
    if (!pool) {
      pool = new WorkerPool(Math.max(...run.map((m) => m.worker.plugin.config.poolSize)), this.logger, this.workerStore());
      this.workers.set(key, pool);
    }
    pool.setTicks(true);
    // Recorded before the threads start, so they load every member (no await: sync).
    for (const m of run) {
      if (pool.has(m.worker.key)) continue;
      pool.load(m.worker.key, m.worker.plugin.config, m.worker.plugin.version).catch((err: unknown) =>
        this.logger.error({ plugin: m.worker.plugin.name, err: (err as Error).message }, 'plugin could not be loaded in its worker threads'));
    }
    return pool;
  }

  /**
   * The store a filter block selects: `backend "local"` (or none) → the runtime's store
   * (shared memory across proxy threads when there are several); `"redis"` / `"memcached"`
   * → a remote store built from the block's redis-* / memcached-* keys, wrapped with the
   * per-call deadline and the optional local fallback. Filters naming the same connection
   * settings share one store (and its connections).
   */
  storeFor(settings: ConfigNode): Store {
    const backend = stringArg(settings, 'backend') ?? 'local';
    if (backend === 'local') return this.services.store;
    const R = D.rateLimit;
    const opts = backend === 'redis'
      ? { backend, url: stringArg(settings, 'redis-url') ?? 'redis://127.0.0.1:6379', prefix: stringArg(settings, 'redis-prefix') ?? R.redisPrefix, poolSize: numberArg(settings, 'redis-pool-size') ?? R.redisPoolSize, timeoutMs: numberArg(settings, 'redis-timeout-ms') ?? R.redisTimeoutMs, fallback: stringArg(settings, 'redis-fallback') === 'true', ttlSecs: 0 }
      : backend === 'memcached'
        ? { backend, url: stringArg(settings, 'memcached-url') ?? 'memcache://127.0.0.1:11211', prefix: stringArg(settings, 'memcached-prefix') ?? R.memcachedPrefix, poolSize: numberArg(settings, 'memcached-pool-size') ?? R.memcachedPoolSize, timeoutMs: numberArg(settings, 'memcached-timeout-ms') ?? R.memcachedTimeoutMs, fallback: stringArg(settings, 'memcached-fallback') === 'true', ttlSecs: numberArg(settings, 'memcached-ttl') ?? R.memcachedTtlSecs }
        : undefined;
    if (!opts) throw new WeirError('WEIR_ERR_CONFIG_VALUE', `unknown store backend ${JSON.stringify(backend)}`);
    const key = JSON.stringify(opts);
    let store = this.stores.get(key);
    if (!store) {
      const remote = opts.backend === 'redis' ? new RedisStore(opts) : new MemcachedStore(opts);
      store = new FallbackStore(remote, { logger: this.logger, registry: this.registry, timeoutMs: opts.timeoutMs, fallback: opts.fallback });
      this.stores.set(key, store);
      this.storeIds.set(store, key);
    }
    return store;
  }

  /**
   * A `Phase` for a filter running a plugin. `opts.plugin` runs a plugin the config does not
   * name (first-party filters); `opts.store` gives it a store of its own (see storeFor).
   */
  async phaseFor(filter: FilterConfig, config: WeirConfig, opts: { plugin?: PluginConfig; store?: Store } = {}): Promise<Phase> {
    const pc = opts.plugin ?? (filter.plugin !== undefined ? config.plugins.get(filter.plugin) : undefined);
    if (!pc) throw new WeirError('WEIR_ERR_CONFIG_REFERENCE', `filter ${filter.name} names plugin ${filter.plugin ?? '(none)'}, which is not defined`);
    const plugin = await this.plugin(pc, opts.store);
    if (pc.isolation === 'worker') {
      // Loaded here too (describe + config check); hooks run in the plugin's worker threads.
      const key = keyOf(pc);
      let pool = this.workers.get(key);
      if (!pool) this.workers.set(key, (pool = new WorkerPool(pc.poolSize, this.logger, this.workerStore())));
      if (!this.inWorkers.has(plugin)) {
        await pool.load(key, pc, plugin.version);
        this.inWorkers.add(plugin);
      }
      // Its worker threads run the timer (again, if a reload had left the plugin unused).
      pool.setTicks(true);
      return workerMemberPhase(filter, plugin, key, pool, this.logger);
    }
    // Inline: this thread runs the hooks, so it runs the timer too (a worker plugin's ticks
    // run in its worker threads).
    plugin.startTicks();
    return wasmPhase(filter, plugin);
  }

  /** The loaded plugin for this config (and store), loading it if needed. */
  async plugin(pc: PluginConfig, store?: Store): Promise<WasmPlugin> {
    const key = `${keyOf(pc)}\u0000${this.storeId(store)}`;
    let p = this.plugins.get(key);
    if (!p) {
      p = await WasmPlugin.load(pc, { services: this.services, metrics: this.metrics, logger: this.logger, store });
      this.plugins.set(key, p);
      this.watch(pc.path);
      this.logger.info({ plugin: pc.name, path: pc.path, isolation: pc.isolation, hooks: [...p.version.hooks], sha256: p.version.sha256.slice(0, 12) }, 'plugin loaded');
    }
    return p;
  }

  private storeId(store: Store | undefined): string {
    if (store === undefined || store === this.services.store) return '';
    let id = this.storeIds.get(store);
    if (id === undefined) {
      id = `store-${this.stores.size + 1}-${Math.random().toString(36).slice(2)}`;
      this.storeIds.set(store, id);
    }
    return id;
  }

  /** The plugin configs of the first-party plugins a config uses (they are not in `plugins {}`). */
  private firstPartyConfigs(config: WeirConfig): PluginConfig[] {
    const out: PluginConfig[] = [];
    try {
      for (const f of config.filters.values()) if (FIRST_PARTY_FILTERS.has(f.type)) out.push(filterPluginConfig(f));
      for (const u of config.upstreams.values()) {
        const pc = balancerPluginConfig(u);
        if (pc) out.push(pc);
      }
    } catch {
      // A first-party plugin that is not built: nothing of it is loaded, nothing to keep.
    }
    return out;
  }

  /** Drops plugins the current config no longer uses (their instances go with the old snapshot). */
  retain(config: WeirConfig, extra: readonly PluginConfig[] = this.firstPartyConfigs(config)): void {
    const keep = new Set([...config.plugins.values(), ...extra].map(keyOf));
    // Only plugins a filter runs tick; phaseFor (or the first-party factory) starts a timer again when one does.
    const used = new Set([...config.filters.values()].flatMap((f) => {
      const pc = f.type === 'wasm' && f.plugin !== undefined ? config.plugins.get(f.plugin) : undefined;
      return pc ? [keyOf(pc)] : [];
    }));
    for (const pc of extra) used.add(keyOf(pc));
    for (const [k, p] of [...this.plugins]) {
      const key = k.slice(0, k.indexOf('\u0000'));
      if (!used.has(key)) p.stopTicks();
      if (!keep.has(key)) this.plugins.delete(k);
    }
    for (const [k, pool] of this.workers) {
      if (pool.keys().every((key) => keep.has(key)) && (keep.has(k) || k.startsWith('run\u0000'))) {
        // Kept, but a pool none of whose plugins a filter runs stops ticking.
        pool.setTicks(pool.keys().some((key) => used.has(key)));
        continue;
      }
      this.workers.delete(k);
      // Its timers stop now; requests of the old snapshot may still be on its threads:
      // close once they are done.
      pool.setTicks(false);
      setTimeout(() => void pool.close(), RETIRED_POOL_GRACE_MS).unref();
    }
    const paths = new Set([...this.plugins.values()].map((p) => p.config.path));
    for (const [path, w] of this.watchers) {
      if (!paths.has(path)) {
        w.close();
        this.watchers.delete(path);
      }
    }
  }

  private watch(path: string): void {
    if (this.watchers.has(path)) return;
    // Watch the directory: build tools replace the file (rename), which ends a file watch.
    const name = basename(path);
    try {
      const w = watch(dirname(path), (_e, f) => {
        if (f !== name) return;
        clearTimeout(this.swapping.get(path));
        this.swapping.set(path, setTimeout(() => {
          this.swapping.delete(path);
          this.lastSwap = this.swap(path);
        }, 50));
      });
      w.unref();
      // The plugin directory going away ends the watch; the loaded version keeps serving.
      w.on('error', (err) => this.logger.warn({ path, err: err.message }, 'plugin file watch ended; hot swap disabled for it'));
      this.watchers.set(path, w);
    } catch (err) {
      this.logger.warn({ path, err: (err as Error).message }, 'cannot watch plugin file; hot swap disabled for it');
    }
  }

  /** Reloads every plugin loaded from `path`; a broken file keeps the old version serving. Resolves to the errors, if any. */
  async swap(path: string): Promise<string[]> {
    let hooksChanged = false;
    const failures: string[] = [];
    for (const p of this.plugins.values()) {
      if (p.config.path !== path) continue;
      const started = performance.now();
      try {
        const next = await p.prepare(p.config);
        if (next.sha256 === p.version.sha256) continue;
        const before = [...p.version.hooks].sort().join();
        if (p.config.isolation === 'worker') {
          const key = keyOf(p.config);
          await Promise.all([...this.workers.values()].filter((w) => w.has(key)).map((w) => w.load(key, p.config, next)));
        }
        p.install(next);
        p.stats.reloads++;
        if ([...next.hooks].sort().join() !== before) hooksChanged = true;
        this.logger.info({ plugin: p.name, sha256: next.sha256.slice(0, 12), ms: Math.round((performance.now() - started) * 10) / 10 }, 'plugin swapped');
      } catch (err) {
        p.stats.reloadFailures++;
        failures.push(`${p.name}: ${(err as Error).message}`);
        this.logger.error({ plugin: p.name, path, code: (err as WeirError).code, err: (err as Error).message }, 'plugin reload failed; the previous version keeps serving');
      }
    }
    if (hooksChanged) this.onHooksChanged?.();
    return failures;
  }

  close(): void {
    for (const p of this.plugins.values()) p.stopTicks();
    for (const pool of this.workers.values()) void pool.close();
    this.workers.clear();
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const t of this.swapping.values()) clearTimeout(t);
    this.ownStore?.close();
    for (const s of this.stores.values()) void s.close();
    this.stores.clear();
  }
}
