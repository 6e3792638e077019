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
import type { FilterConfig, PluginConfig, WeirConfig } from '../../../host/src/config/types.ts';
import { WeirError } from '../../../host/src/errors.ts';
import type { FilterRegistry } from '../../../host/src/filters/registry.ts';
import type { Logger } from '../../../host/src/observability/logger.ts';
import type { Phase } from '../../../host/src/pipeline/phases.ts';
import { LocalStore } from '../../../host/src/store/local.ts';
import type { Store } from '../../../host/src/store/store.ts';
import { HostServices } from './host-services.ts';
import { PluginMetrics } from './metrics.ts';
import { WasmPlugin } from './plugin.ts';
import { wasmPhase } from './wasm-phase.ts';
import { WorkerPool, combineWorkerPhases, workerMemberPhase } from './worker-phase.ts';

export interface RuntimeOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly store?: Store;
  /** Called after a hot swap changed which hooks a plugin implements (the chains must be rebuilt). */
  readonly onHooksChanged?: () => void;
}

const keyOf = (pc: PluginConfig): string => JSON.stringify({ ...pc, loc: undefined });

export class PluginRuntime {
  readonly logger: Logger;
  readonly services: HostServices;
  readonly metrics: PluginMetrics;
  private readonly plugins = new Map<string, WasmPlugin>();
  private readonly watchers = new Map<string, FSWatcher>();
  private readonly swapping = new Map<string, NodeJS.Timeout>();
  private readonly onHooksChanged: (() => void) | undefined;
  private readonly ownStore: Store | undefined;
  /** Resolves when the last hot swap finished (tests and tools wait on it). */
  lastSwap: Promise<void> = Promise.resolve();

  constructor(opts: RuntimeOptions) {
    this.logger = opts.logger;
    this.ownStore = opts.store ? undefined : new LocalStore();
    this.services = new HostServices({ logger: opts.logger, registry: opts.registry, store: opts.store ?? this.ownStore! });
    this.metrics = new PluginMetrics(opts.registry);
    this.onHooksChanged = opts.onHooksChanged;
  }

  private workers: WorkerPool | undefined;
  /** Worker plugins whose current version the worker threads have. */
  private readonly inWorkers = new WeakSet<WasmPlugin>();

  /** Registers the `wasm` filter type, and the merging of consecutive worker plugins. */
  register(filters: FilterRegistry): void {
    filters.register('wasm', (filter, env) => this.phaseFor(filter, env.config));
    filters.combine = (phases) => combineWorkerPhases(phases, this.logger);
  }

  async phaseFor(filter: FilterConfig, config: WeirConfig): Promise<Phase> {
    const pc = filter.plugin !== undefined ? config.plugins.get(filter.plugin) : undefined;
    if (!pc) throw new WeirError('WEIR_ERR_CONFIG_REFERENCE', `filter ${filter.name} names plugin ${filter.plugin ?? '(none)'}, which is not defined`);
    const plugin = await this.plugin(pc);
    if (pc.isolation === 'worker') {
      // Loaded here too (describe + config check); hooks run in the worker threads.
      this.workers ??= new WorkerPool(Math.max(...[...config.plugins.values()].filter((p) => p.isolation === 'worker').map((p) => p.poolSize)));
      const key = keyOf(pc);
      if (!this.inWorkers.has(plugin)) {
        await this.workers.load(key, pc, plugin.version);
        this.inWorkers.add(plugin);
      }
      return workerMemberPhase(filter, plugin, key, this.workers, this.logger);
    }
    return wasmPhase(filter, plugin);
  }

  /** The loaded plugin for this config, loading it if needed. */
  async plugin(pc: PluginConfig): Promise<WasmPlugin> {
    const key = keyOf(pc);
    let p = this.plugins.get(key);
    if (!p) {
      p = await WasmPlugin.load(pc, { services: this.services, metrics: this.metrics, logger: this.logger });
      this.plugins.set(key, p);
      this.watch(pc.path);
      this.logger.info({ plugin: pc.name, path: pc.path, isolation: pc.isolation, hooks: [...p.version.hooks], sha256: p.version.sha256.slice(0, 12) }, 'plugin loaded');
    }
    return p;
  }

  /** Drops plugins the current config no longer uses (their instances go with the old snapshot). */
  retain(config: WeirConfig): void {
    const keep = new Set([...config.plugins.values()].map(keyOf));
    for (const k of [...this.plugins.keys()]) if (!keep.has(k)) this.plugins.delete(k);
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
      this.watchers.set(path, w);
    } catch (err) {
      this.logger.warn({ path, err: (err as Error).message }, 'cannot watch plugin file; hot swap disabled for it');
    }
  }

  /** Reloads every plugin loaded from `path`; a broken file keeps the old version serving. */
  async swap(path: string): Promise<void> {
    let hooksChanged = false;
    for (const p of this.plugins.values()) {
      if (p.config.path !== path) continue;
      const started = performance.now();
      try {
        const next = await p.prepare(p.config);
        if (next.sha256 === p.version.sha256) continue;
        const before = [...p.version.hooks].sort().join();
        if (p.config.isolation === 'worker' && this.workers) await this.workers.load(keyOf(p.config), p.config, next);
        p.install(next);
        p.stats.reloads++;
        if ([...next.hooks].sort().join() !== before) hooksChanged = true;
        this.logger.info({ plugin: p.name, sha256: next.sha256.slice(0, 12), ms: Math.round((performance.now() - started) * 10) / 10 }, 'plugin swapped');
      } catch (err) {
        p.stats.reloadFailures++;
        this.logger.error({ plugin: p.name, path, code: (err as WeirError).code, err: (err as Error).message }, 'plugin reload failed; the previous version keeps serving');
      }
    }
    if (hooksChanged) this.onHooksChanged?.();
  }

  close(): void {
    void this.workers?.close();
    this.workers = undefined;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    for (const t of this.swapping.values()) clearTimeout(t);
    this.ownStore?.close();
  }
}
