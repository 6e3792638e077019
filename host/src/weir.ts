/**
 * A running Weir instance: config loading, listeners, hot reload, graceful shutdown.
 *
 *   loadConfig ─► ProxyCore.compile ─► activate ─► listeners
 *   SIGHUP / file change ─► loadConfig ─► compile ─► activate (old snapshot drains)
 *   SIGTERM / SIGINT ─► stop accepting ─► drain up to graceful-shutdown-timeout ─► close
 */
import type { FSWatcher } from 'node:fs';
import { watchConfigFiles } from './config/watch.ts';
import { loadConfig, loadConfigText, formatDiagnostics } from './config/load.ts';
import type { WeirConfig } from './config/types.ts';
import { WeirError } from './errors.ts';
import { closeLogger, createAccessLogger, createLogger, loggerReady, planAccessLog, type Logger } from './observability/logger.ts';
import { ProxyMetrics } from './observability/metrics.ts';
import { ProxyCore } from './proxy/core.ts';
import type { RunningListener } from './server/listeners.ts';
import { planListeners } from './server/listener-set.ts';
import { planMetricsServer, type MetricsServer } from './server/metrics-server.ts';
import type { FilterRegistry } from './filters/registry.ts';
import { PluginRuntime } from '../../plugin-abi/src/runtime/runtime.ts';
import { dataFiles } from '../../plugin-abi/src/runtime/first-party.ts';
import type { Store } from './store/store.ts';
import { AuditLog } from './observability/audit.ts';
import type { AdminHost, ApplyOutcome, DrainOutcome, ProxyState, PurgeSpec, ReloadRecord } from './admin/host.ts';
import type { AdminServer } from './admin/server.ts';
import { planAdmin } from './admin/plan.ts';
import { adminSettings } from './admin/settings.ts';
import { Discovery, withDiscovered, type Discovered } from './upstream/discovery.ts';

export interface StartOptions {
  /** A KDL file or a directory of them. */
  readonly configPath?: string;
  /** Or KDL text (the embedded default config, tests). */
  readonly configText?: string;
  /** Name used for configText in diagnostics and for relative paths. */
  readonly configName?: string;
  readonly logger?: Logger;
  /** Access log override (tests turn it off). */
  readonly accessLog?: Logger | false;
  /** Reload when a config file changes (default: true when configPath is given). */
  readonly watch?: boolean;
  /** SIGHUP reload, SIGTERM/SIGINT shutdown (default: false; the CLI turns it on). */
  readonly signals?: boolean;
  readonly skipFileChecks?: boolean;
  /** The plugins' default store (proxy threads pass their SharedStore); default: a LocalStore. */
  readonly store?: Store;
  /** Listen with SO_REUSEPORT, so several proxy threads share each port (Linux). */
  readonly reusePort?: boolean;
  /** Start the separate metrics listener, if configured (default true; one proxy thread does). */
  readonly metricsServer?: boolean;
  /** A proxy thread of a cluster: the supervisor serves the admin API and audits reloads. */
  readonly clusterThread?: boolean;
  /** A cluster thread: the targets the supervisor's discovery found (it runs no discovery of its own). */
  readonly discovered?: Discovered;
  /** Config text to read instead of these files (a cluster's unpersisted admin API changes). */
  readonly overrides?: Readonly<Record<string, string>>;
  /** Called with each filter registry before the first compile (plugin runtime hooks in here). */
  readonly extendFilters?: (registry: FilterRegistry, weir: { logger: Logger; metrics: ProxyMetrics }) => void | Promise<void>;
}

export interface ReloadResult {
  readonly ok: boolean;
  readonly generation: number;
  readonly error?: string;
}

/** A reload ready to commit (nothing serving changed yet), or why it cannot be. */
export type PreparedReload =
  | { readonly ok: true; commit(): ReloadResult; abort(reason: string): ReloadResult }
  | { readonly ok: false; readonly result: ReloadResult };

/** How many reloads `reloads()` remembers (the admin UI's list). */
const RELOADS_KEPT = 20;

export type ReloadTrigger = 'file' | 'signal' | 'admin-api' | 'api' | 'discovery';

export class Weir {
  readonly core: ProxyCore;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics;
  readonly plugins: PluginRuntime;
  config: WeirConfig;
  private readonly opts: StartOptions;
  private listeners = new Map<string, RunningListener>();
  private metricsServer: MetricsServer | undefined;
  private adminServer: AdminServer | undefined;
  /** Unpersisted admin API changes the running config was built with. */
  private adminOverrides: Readonly<Record<string, string>> | undefined;
  private readonly reloadLog: ReloadRecord[] = [];
  readonly audit: AuditLog;
  private watchers: FSWatcher[] = [];
  private reloading: Promise<ReloadResult> | undefined;
  private closing: Promise<void> | undefined;
  private signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  /** Runs the upstreams' discovery sources (not in a cluster thread: the supervisor does). */
  private discovery: Discovery | undefined;
  /** What a cluster thread was last told discovery found. */
  discovered: Discovered = {};

  private constructor(opts: StartOptions, config: WeirConfig, core: ProxyCore, logger: Logger, metrics: ProxyMetrics, plugins: PluginRuntime) {
    this.opts = opts;
    this.audit = core.audit;
    this.plugins = plugins;
    this.config = config;
    this.core = core;
    this.logger = logger;
    this.metrics = metrics;
  }

  static async start(opts: StartOptions): Promise<Weir> {
    let config = await loadFrom(opts, opts.overrides);
    const logging = config.observability.logging;
    const metrics = new ProxyMetrics();
    const logger = opts.logger ?? createLogger({ level: logging.level, format: logging.format, errors: metrics.logSinkErrors });
    const accessLog = opts.accessLog === false ? undefined : (opts.accessLog ?? createAccessLogger(logging, false, metrics.logSinkErrors));
    if (accessLog && opts.accessLog === undefined) {
      // An access log that cannot be opened stops the start before anything listens.
      try {
        await loggerReady(accessLog, 'access log');
      } catch (err) {
        closeLogger(accessLog);
        throw err;
      }
    }
    const core = new ProxyCore({ logger, accessLog, metrics });
    try {
      core.audit = await AuditLog.open(logging, metrics.logSinkErrors);
    } catch (err) {
      if (accessLog && opts.accessLog === undefined) closeLogger(accessLog);
      throw err;
    }
    let weir: Weir | undefined;
    const plugins = new PluginRuntime({ logger, registry: metrics.registry, store: opts.store, onHooksChanged: () => void weir?.recompile() });
    plugins.register(core.filters);
    if (opts.extendFilters) await opts.extendFilters(core.filters, { logger, metrics });
    // Targets are found before the first snapshot, so a discovering upstream starts with them.
    const discovery = opts.clusterThread ? undefined : new Discovery({ logger, registry: metrics.registry, onChange: () => void weir?.reload('discovery') });
    await discovery?.sync(config);
    config = withDiscovered(config, discovery?.current() ?? opts.discovered ?? {});
    try {
      core.activate(await core.compile(config));
    } catch (err) {
      discovery?.close();
      plugins.close();
      await core.close();
      core.audit.close();
      throw err;
    }
    weir = new Weir(opts, config, core, logger, metrics, plugins);
    weir.adminOverrides = opts.overrides;
    weir.discovery = discovery;
    weir.discovered = opts.discovered ?? {};
    try {
      (await weir.planServing(config)).commit();
    } catch (err) {
      await weir.close();
      throw err;
    }
    if (opts.watch ?? opts.configPath !== undefined) weir.watchFiles(config);
    if (opts.signals) weir.installSignals();
    return weir;
  }

  /** Where a listener is bound (the real port when the config said port 0). */
  address(listener?: string): { host: string; port: number } {
    const l = listener ? this.listeners.get(listener) : this.listeners.values().next().value;
    if (!l) throw new Error(`no listener ${listener ?? ''}`);
    return l.address;
  }

  url(listener?: string): string {
    const a = this.address(listener);
    const l = listener ? this.listeners.get(listener)! : this.listeners.values().next().value!;
    const host = a.host.includes(':') ? `[${a.host}]` : a.host;
    return `${l.config.protocol === 'https' ? 'https' : 'http'}://${host}:${a.port}`;
  }

  metricsAddress(): { host: string; port: number } | undefined {
    return this.metricsServer?.address;
  }

  /** Where the admin API listens, when it does. */
  adminAddress(): { host: string; port: number } | undefined {
    return this.adminServer?.address;
  }

  /** Re-reads the config; a bad one keeps the current config serving. Unpersisted admin API changes are dropped (the file wins). */
  reload(trigger: ReloadTrigger = 'api'): Promise<ReloadResult> {
    // A discovered change keeps unpersisted admin API changes (only the file wins over them).
    return this.reloadWith(trigger === 'discovery' ? this.adminOverrides : undefined, trigger);
  }

  private reloadWith(overrides: Readonly<Record<string, string>> | undefined, trigger: ReloadTrigger): Promise<ReloadResult> {
    const run = (this.reloading ?? Promise.resolve()).catch(() => undefined).then(() => this.prepareReload(overrides, trigger)).then((p) => (p.ok ? p.commit() : p.result));
    const tracked = run.finally(() => {
      if (this.reloading === tracked) this.reloading = undefined;
    });
    this.reloading = tracked;
    return tracked;
  }

  /**
   * A reload is a transaction: load, compile (plugins load and configure), bind new
   * addresses and build changed listener stacks, all beside the running config; then commit,
   * which cannot fail. Any failure leaves the old config, listeners and plugins serving.
   * Proxy threads prepare, and commit only once every thread prepared (cluster/thread.ts).
   */
  async prepareReload(overrides?: Readonly<Record<string, string>>, trigger: ReloadTrigger = 'api', discovered?: Discovered): Promise<PreparedReload> {
    const started = performance.now();
    try {
      const loaded = await loadFrom(this.opts, overrides);
      await this.discovery?.sync(loaded);
      const found = this.discovery?.current() ?? discovered ?? this.discovered;
      const config = withDiscovered(loaded, found);
      const snap = await this.core.compile(config);
      const prepared = await this.planServing(config);
      return {
        ok: true,
        commit: () => {
          prepared.commit();
          this.core.activate(snap);
          this.config = config;
          this.plugins.retain(config);
          this.watchFiles(config);
          this.adminOverrides = overrides;
          this.discovered = found;
          this.metrics.reloads.labels('ok').inc();
          this.logger.info({ generation: snap.generation, ms: Math.round(performance.now() - started), trigger }, 'configuration reloaded');
          this.recordReload(trigger, true, snap.generation);
          return { ok: true, generation: snap.generation };
        },
        abort: (reason) => {
          prepared.abort();
          return this.reloadFailed(new WeirError('WEIR_ERR_RELOAD', reason), trigger);
        },
      };
    } catch (err) {
      return { ok: false, result: this.reloadFailed(err as Error, trigger) };
    }
  }

  private recordReload(trigger: ReloadTrigger, ok: boolean, generation: number, error?: string): void {
    if (this.opts.clusterThread) return;
    const r: ReloadRecord = { at: new Date().toISOString(), trigger, ok, generation, ...(error ? { error } : {}) };
    this.reloadLog.push(r);
    if (this.reloadLog.length > RELOADS_KEPT) this.reloadLog.shift();
    this.audit.reload({ trigger, ok, generation, ...(error ? { error } : {}) });
  }

  private reloadFailed(err: Error, trigger: ReloadTrigger = 'api'): ReloadResult {
    // Plugins loaded for the refused config go; the running ones stay (and its discovery sources).
    this.plugins.retain(this.config);
    void this.discovery?.sync(this.config);
    this.metrics.reloads.labels('error').inc();
    this.metrics.errors.labels('WEIR_ERR_RELOAD').inc();
    const cause = (err as WeirError).code ?? 'WEIR_ERR_RELOAD';
    this.logger.error({ code: 'WEIR_ERR_RELOAD', cause, err: err.message }, 'configuration reload failed; the previous configuration keeps serving');
    this.recordReload(trigger, false, this.core.snapshot.generation, err.message);
    return { ok: false, generation: this.core.snapshot.generation, error: err.message };
  }

  /** Rebuilds the snapshot from the current config (after a plugin swap changed its hooks). */
  async recompile(): Promise<void> {
    try {
      this.core.activate(await this.core.compile(this.config));
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'rebuilding the filter chains failed; keeping the current ones');
    }
  }

  /** Listeners and the metrics listener for `config`, prepared beside the running ones. */
  private async planServing(config: WeirConfig): Promise<{ commit(): void; abort(): void }> {
    const steps: Array<{ commit(): void; abort(): void }> = [];
    try {
      const listeners = await planListeners(this.listeners, config, this.core, this.logger, this.opts.reusePort);
      steps.push({ commit: () => (this.listeners = listeners.commit()), abort: () => listeners.abort() });
      const metrics = await planMetricsServer(this.metricsServer, config.observability.metrics, this.opts.metricsServer !== false, this.metrics, this.logger);
      steps.push({ commit: () => (this.metricsServer = metrics.commit()), abort: () => metrics.abort() });
      steps.push(await this.audit.plan(config.observability.logging));
      if (!this.opts.clusterThread) {
        const admin = await planAdmin(this.adminServer, adminSettings(config.adminApi), this.adminHost(), this.logger);
        steps.push({ commit: () => (this.adminServer = admin.commit()), abort: () => admin.abort() });
      }
      if (this.opts.accessLog === undefined) {
        // `this.config` is the running config (at start, the same one: nothing to open again).
        const access = await planAccessLog(this.core.accessLog, this.config.observability.logging, config.observability.logging, this.metrics.logSinkErrors);
        steps.push({ commit: () => (this.core.accessLog = access.commit()), abort: () => access.abort() });
      }
    } catch (err) {
      for (const s of steps) s.abort();
      throw err;
    }
    return {
      commit: () => {
        for (const s of steps) s.commit();
      },
      abort: () => {
        for (const s of steps) s.abort();
      },
    };
  }

  private watchFiles(config: WeirConfig): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.opts.configPath === undefined || this.opts.watch === false) return;
    // An auth filter's keys-file, htpasswd or jwks-file changing reloads like a config file.
    this.watchers = watchConfigFiles([...config.files, ...dataFiles(config.filters.values())], () => void this.reload('file'), this.logger);
  }

  private installSignals(): void {
    const on = (sig: NodeJS.Signals, f: () => void): void => {
      process.on(sig, f);
      this.signalHandlers.push([sig, f]);
    };
    // A bug in one exchange must not take the proxy down: log it and keep serving.
    const onRejection = (err: unknown): void => {
      this.logger.error({ code: 'WEIR_ERR_INTERNAL', err: (err as Error)?.stack ?? String(err) }, 'unhandled rejection');
      this.metrics.errors.labels('WEIR_ERR_INTERNAL').inc();
    };
    process.on('unhandledRejection', onRejection);
    this.signalHandlers.push(['unhandledRejection' as NodeJS.Signals, onRejection as () => void]);
    on('SIGHUP', () => void this.reload('signal'));
    const shutdown = (sig: string): void => {
      this.logger.info({ signal: sig }, 'shutting down');
      void this.close().then(() => process.exit(0));
    };
    on('SIGTERM', () => shutdown('SIGTERM'));
    on('SIGINT', () => shutdown('SIGINT'));
  }

  /** Graceful shutdown: stop accepting, drain in-flight up to the configured timeout, close. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.discovery?.close();
    for (const w of this.watchers) w.close();
    for (const [sig, f] of this.signalHandlers) process.off(sig, f);
    this.core.draining = true;
    for (const l of this.listeners.values()) {
      l.stop();
      l.closeIdle();
    }
    const idle = await this.core.whenIdleOr(this.config.system.gracefulShutdownTimeoutMs);
    if (!idle) this.logger.warn({ inFlight: this.core.inFlight }, 'drain timeout: closing remaining connections');
    for (const l of this.listeners.values()) l.destroyAll();
    this.listeners.clear();
    await this.metricsServer?.close();
    await this.adminServer?.close();
    this.plugins.close();
    await this.core.close();
    if (this.core.accessLog && this.opts.accessLog === undefined) await closeLogger(this.core.accessLog);
    await this.audit.close();
    this.logger.flush?.();
  }

  /** The admin API's view of this instance (admin/host.ts); a cluster's supervisor has its own. */
  private adminHost(): AdminHost {
    return {
      configPath: this.opts.configPath,
      audit: this.audit,
      config: () => this.config,
      overrides: () => this.adminOverrides,
      apply: (overrides, trigger): Promise<ApplyOutcome> => this.reloadWith(overrides, trigger),
      state: () => this.state(),
      drain: (u, a, on, ms) => this.drain(u, a, on, ms),
      reloadPlugin: (name) => this.reloadPlugin(name),
      purge: (spec) => this.purge(spec),
      metrics: () => this.metrics.registry.getMetricsAsJSON(),
      reloads: () => this.reloadLog,
    };
  }

  /** The config text admin API changes replaced (file → text), if any: a cluster thread reloads with them. */
  overrides(): Readonly<Record<string, string>> | undefined {
    return this.adminOverrides;
  }

  async state(): Promise<ProxyState> {
    const snap = this.core.snapshot;
    return {
      generation: snap.generation,
      ready: !this.core.draining,
      threads: 1,
      inFlight: this.core.inFlight,
      upstreams: [...snap.upstreams.values()].map((u) => ({
        name: u.name,
        ...(u.breaker ? { circuit: u.breaker.state() } : {}),
        ...(u.outlier ? { panic: u.panicking() } : {}),
        targets: u.targets.map((t) => ({
          address: t.address,
          weight: t.weight,
          healthy: t.healthy,
          ejected: t.ejected,
          ...(t.outlierState ? { ejections: t.outlierState.ejections, ejectionReason: t.outlierState.reason } : {}),
          draining: u.draining.has(t.address),
          inFlight: t.localInFlight,
          requests: t.localRequests,
          failures: t.localTotalFailures,
        })),
      })),
    };
  }

  drain(upstream: string, address: string, drain: boolean, timeoutMs: number): Promise<DrainOutcome> {
    return this.core.drain(upstream, address, drain, timeoutMs);
  }

  async reloadPlugin(name: string): Promise<{ ok: boolean; error?: string }> {
    const p = this.config.plugins.get(name);
    if (!p) return { ok: false, error: `no plugin ${name}` };
    const failures = await this.plugins.swap(p.path);
    return failures.length ? { ok: false, error: failures.join('; ') } : { ok: true };
  }

  async purge(spec: PurgeSpec): Promise<number> {
    return this.core.httpCache.purge(spec);
  }

}

async function loadFrom(opts: StartOptions, overrides?: Readonly<Record<string, string>>): Promise<WeirConfig> {
  const res = opts.configPath !== undefined
    ? await loadConfig(opts.configPath, { skipFileChecks: opts.skipFileChecks, ...(overrides ? { overrides } : {}) })
    : await loadConfigText(opts.configText ?? '', opts.configName ?? 'weir.kdl', { skipFileChecks: opts.skipFileChecks });
  if (!res.ok) {
    throw new WeirError(res.diagnostics[0]!.code as never, `invalid configuration:\n${formatDiagnostics(res.diagnostics)}`, { detail: { diagnostics: res.diagnostics } });
  }
  return res.config;
}

export function startWeir(opts: StartOptions): Promise<Weir> {
  return Weir.start(opts);
}
