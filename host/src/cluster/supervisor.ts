/**
 * Multi-core Weir: `system { worker-threads N }` proxy threads in one process, supervised
 * by the main thread.
 *
 *   main: load config ─► SharedArrayBuffer ─► thread 0 (binds first) ─► threads 1..N-1
 *   thread exits unexpectedly ─► logged, counted, replaced (crash loops back off)
 *   SIGHUP / config file change ─► reload in every thread
 *   SIGTERM / SIGINT ─► every thread drains and closes ─► process exits
 *   /metrics in any thread ─► main gathers every thread's registry ─► one aggregate
 */
import { Discovery } from '../upstream/discovery.ts';
import { availableParallelism } from 'node:os';
import type { FSWatcher } from 'node:fs';
import { watchConfigFiles } from '../config/watch.ts';
import { Worker } from 'node:worker_threads';
import { AggregatorRegistry, Counter, Gauge, Registry, type PrometheusContentType } from 'prom-client';
import { loadConfig, formatDiagnostics } from '../config/load.ts';
import type { WeirConfig } from '../config/types.ts';
import { ERRORS, WeirError, type ErrorCode } from '../errors.ts';
import { createLogger, type Logger } from '../observability/logger.ts';
import { createSharedBuffer } from '../store/shared.ts';
import { aggregateMetrics } from './aggregate.ts';
import { AuditLog } from '../observability/audit.ts';
import type { AdminHost, DrainOutcome, ProxyState, ReloadRecord, TargetState } from '../admin/host.ts';
import type { AdminServer } from '../admin/server.ts';
import { planAdmin } from '../admin/plan.ts';
import { adminSettings } from '../admin/settings.ts';
import type { FromThread, MetricsJson, ThreadData, ToThread } from './protocol.ts';

export interface ClusterOptions {
  readonly configPath: string;
  /** Overrides `system { worker-threads }` (0 = one per core). */
  readonly threads?: number;
  readonly logger?: Logger;
  /** SIGHUP reload, SIGTERM/SIGINT shutdown (the CLI turns it on). */
  readonly signals?: boolean;
  /** Reload every thread when a config file changes (default true). */
  readonly watch?: boolean;
  readonly skipFileChecks?: boolean;
}

export interface ClusterReload {
  readonly ok: boolean;
  /** Per thread: its result (threads that did not answer in time are missing). */
  readonly threads: ReadonlyArray<{ thread: number; ok: boolean; generation: number; error?: string }>;
}

let threadEntry: URL | string = new URL('./thread.ts', import.meta.url);

/** Where the proxy thread's entry module is (a bundled single binary extracts its own). */
export function setThreadEntry(entry: URL | string): void {
  threadEntry = entry;
}
const isErrorCode = (c: string): c is ErrorCode => Object.hasOwn(ERRORS, c);
const ANSWER_MS = 2_000;
/** How long a thread may take to prepare a reload (plugins compile). */
const PREPARE_MS = 30_000;
const RESTART_MIN_MS = 100;
const RESTART_MAX_MS = 10_000;

/** Resolves the thread count: 0 = one per core. */
export function threadCount(configured: number): number {
  return configured > 0 ? configured : availableParallelism();
}

class ProxyThread {
  readonly index: number;
  worker!: Worker;
  listeners: Record<string, { host: string; port: number }> = {};
  ready: Promise<void> = Promise.resolve();
  /** Consecutive restarts without a clean start, for backoff. */
  restarts = 0;
  constructor(index: number) {
    this.index = index;
  }
}

/** The supervisor's own metrics (beside every thread's merged registry). */
export function clusterMetrics(registry: Registry): { restarts: Counter<'thread'>; threads: Gauge } {
  const registers = [registry];
  return {
    restarts: new Counter({ name: 'weir_thread_restarts_total', help: 'Proxy threads replaced after exiting unexpectedly', labelNames: ['thread'], registers }),
    threads: new Gauge({ name: 'weir_threads', help: 'Proxy threads serving', registers }),
  };
}

export class Cluster {
  readonly logger: Logger;
  readonly registry = new Registry();
  readonly threads: ProxyThread[] = [];
  readonly sab: SharedArrayBuffer;
  config: WeirConfig;
  private readonly opts: ClusterOptions;
  private readonly restartsTotal: Counter<'thread'>;
  private readonly threadsUp: Gauge;
  private closing: Promise<void> | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, (m: FromThread, thread: number) => void>();
  private watchers: FSWatcher[] = [];
  private restartTimers = new Set<NodeJS.Timeout>();
  private signalHandlers: Array<[NodeJS.Signals, () => void]> = [];
  /** The admin API runs here, once for every thread. */
  private adminServer: AdminServer | undefined;
  private adminOverrides: Readonly<Record<string, string>> | undefined;
  private readonly reloadLog: ReloadRecord[] = [];
  /** What the admin API drains (upstream → addresses), for threads started later. */
  private readonly drains = new Map<string, Set<string>>();
  audit: AuditLog = AuditLog.into(undefined);
  /** Every upstream's discovery source (the threads get what it finds with each reload). */
  private readonly discovery: Discovery;

  private constructor(opts: ClusterOptions, config: WeirConfig, logger: Logger) {
    this.opts = opts;
    this.config = config;
    this.logger = logger;
    this.sab = createSharedBuffer();
    ({ restarts: this.restartsTotal, threads: this.threadsUp } = clusterMetrics(this.registry));
    this.discovery = new Discovery({ logger, registry: this.registry, onChange: () => void this.reload('discovery', this.adminOverrides) });
  }

  static async start(opts: ClusterOptions): Promise<Cluster> {
    const res = await loadConfig(opts.configPath, { skipFileChecks: opts.skipFileChecks });
    if (!res.ok) throw new WeirError(res.diagnostics[0]!.code as never, `invalid configuration:\n${formatDiagnostics(res.diagnostics)}`, { detail: { diagnostics: res.diagnostics } });
    const config = res.config;
    const logger = opts.logger ?? createLogger({ level: config.observability.logging.level, format: config.observability.logging.format });
    const c = new Cluster(opts, config, logger);
    const n = threadCount(opts.threads ?? config.system.workerThreads);
    if (n > 1 && config.listeners.some((l) => l.port === 0)) {
      logger.warn('a listener on port 0 gets a different port in every proxy thread; give it a fixed port');
    }
    try {
      c.audit = await AuditLog.open(config.observability.logging);
      // Threads start with the targets already found.
      await c.discovery.sync(config);
      // Thread 0 first: a bad config or a taken port fails once, not N times.
      c.threads.push(new ProxyThread(0));
      await c.spawn(c.threads[0]!);
      for (let i = 1; i < n; i++) c.threads.push(new ProxyThread(i));
      await Promise.all(c.threads.slice(1).map((t) => c.spawn(t)));
      c.adminServer = (await planAdmin(undefined, adminSettings(config.adminApi), c.adminHost(), logger)).commit();
    } catch (err) {
      await c.close();
      throw err;
    }
    if (opts.watch !== false) c.watchFiles();
    if (opts.signals) c.installSignals();
    logger.info({ threads: n }, 'proxy threads started');
    return c;
  }

  /** Where a listener is bound (thread 0's view; every thread binds the same port). */
  address(listener?: string): { host: string; port: number } {
    const l = this.threads[0]?.listeners ?? {};
    const a = listener ? l[listener] : Object.values(l)[0];
    if (!a) throw new Error(`no listener ${listener ?? ''}`);
    return a;
  }

  private spawn(t: ProxyThread): Promise<void> {
    const data: ThreadData = { index: t.index, configPath: this.opts.configPath, skipFileChecks: this.opts.skipFileChecks === true, sab: this.sab, discovered: this.discovery.current(), ...(this.adminOverrides ? { overrides: this.adminOverrides } : {}), drains: [...this.drains].flatMap(([u, set]) => [...set].map((a) => [u, a] as const)) };
    const w = new Worker(threadEntry, { workerData: data, name: `weir-proxy-${t.index}` });
    t.worker = w;
    let started = false;
    t.ready = new Promise<void>((resolve, reject) => {
      w.on('message', (m: FromThread) => {
        if (m.t === 'ready') {
          started = true;
          t.listeners = m.listeners;
          this.threadsUp.inc();
          resolve();
        } else if (m.t === 'start-failed') {
          // The thread's own code (WEIR_ERR_LISTEN for a port in use) is the operator's answer.
          const code = m.code !== undefined && isErrorCode(m.code) ? m.code : 'WEIR_ERR_INTERNAL';
          reject(new WeirError(code, code === 'WEIR_ERR_INTERNAL' ? `proxy thread ${t.index} failed to start: ${m.error}` : m.error));
        } else {
          this.onMessage(t, m);
        }
      });
      w.on('error', (err) => {
        this.logger.error({ thread: t.index, err: err.message, stack: err.stack }, 'proxy thread crashed');
        if (!started) reject(err);
      });
      w.on('exit', (code) => {
        if (started) this.threadsUp.dec();
        if (!started) reject(new WeirError('WEIR_ERR_INTERNAL', `proxy thread ${t.index} exited with code ${code} while starting`));
        if (this.closing || t.worker !== w) return;
        this.replace(t, code, started);
      });
    });
    return t.ready;
  }

  /** A thread ended without being asked to: start another in its place. */
  private replace(t: ProxyThread, code: number, hadStarted: boolean): void {
    this.restartsTotal.labels(String(t.index)).inc();
    t.restarts = hadStarted ? 1 : t.restarts + 1;
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** (t.restarts - 1));
    this.logger.error({ thread: t.index, code, restartInMs: delay }, 'proxy thread exited unexpectedly; replacing it');
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      if (this.closing) return;
      this.spawn(t).then(
        () => {
          t.restarts = 0;
          this.logger.info({ thread: t.index }, 'proxy thread replaced');
        },
        (err: Error) => this.logger.error({ thread: t.index, err: err.message }, 'replacement proxy thread failed to start'),
      );
    }, delay);
    this.restartTimers.add(timer);
  }

  private onMessage(t: ProxyThread, m: FromThread): void {
    switch (m.t) {
      case 'metrics-request':
        void this.metricsText().then(
          (text) => this.post(t, { t: 'metrics-text', id: m.id, text }),
          (err: Error) => this.post(t, { t: 'metrics-text', id: m.id, error: err.message }),
        );
        return;
      case 'prepared':
      case 'reloaded':
      case 'metrics-json':
      case 'admin-answer':
        this.waiting.get(m.id)?.(m, t.index);
        return;
      default:
        return;
    }
  }

  private post(t: ProxyThread, m: ToThread): void {
    try {
      t.worker.postMessage(m);
    } catch {
      // The thread is gone; its replacement will not need the answer.
    }
  }

  /** Sends `make(id)` to every live thread and collects answers for up to ANSWER_MS. */
  private ask<R>(make: (id: number) => ToThread, ms = ANSWER_MS): Promise<Array<{ thread: number; m: R }>> {
    const id = this.nextId++;
    const live = this.threads.filter((t) => t.worker.threadId !== -1);
    const got: Array<{ thread: number; m: R }> = [];
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(got.sort((a, b) => a.thread - b.thread));
      };
      const timer = setTimeout(done, ms);
      this.waiting.set(id, (m, thread) => {
        got.push({ thread, m: m as R });
        if (got.length === live.length) done();
      });
      if (live.length === 0) done();
      for (const t of live) this.post(t, make(id));
    });
  }

  /** The aggregate /metrics text of every thread plus the supervisor's metrics. */
  async metricsText(): Promise<string> {
    const answers = await this.ask<{ metrics: MetricsJson }>((id) => ({ t: 'metrics-json', id }));
    return aggregateMetrics(answers.map((a) => ({ thread: a.thread, metrics: a.m.metrics })), this.registry);
  }

  /**
   * Reloads every thread as one transaction: each prepares (re-reads the config, binds,
   * loads) without changing what it serves; only when every thread prepared do they all
   * commit, else they all abort and keep their old config. Reloads run one at a time.
   */
  reload(trigger: 'file' | 'signal' | 'admin-api' | 'api' | 'discovery' = 'api', overrides?: Readonly<Record<string, string>>): Promise<ClusterReload> {
    const run = this.reloadChain.then(() => this.doReload(trigger, overrides));
    this.reloadChain = run.catch(() => undefined);
    return run;
  }

  private reloadChain: Promise<unknown> = Promise.resolve();

  private async doReload(trigger: 'file' | 'signal' | 'admin-api' | 'api' | 'discovery', overrides: Readonly<Record<string, string>> | undefined): Promise<ClusterReload> {
    const res = await loadConfig(this.opts.configPath, { skipFileChecks: this.opts.skipFileChecks, ...(overrides ? { overrides } : {}) });
    // Discovery runs here, once: every thread gets the same sets in the same reload.
    if (res.ok) await this.discovery.sync(res.config);
    const discovered = this.discovery.current();
    let prepareId = 0;
    const prepared = await this.ask<{ ok: boolean; error?: string }>((id) => ((prepareId = id), { t: 'reload-prepare', id, discovered, ...(overrides ? { overrides } : {}) }), PREPARE_MS);
    // A thread being replaced starts on the file as it is now: only running threads vote.
    const live = this.threads.filter((t) => t.worker.threadId !== -1);
    const failed = live.filter((t) => !prepared.some((a) => a.thread === t.index && a.m.ok)).map((t) => t.index);
    const commit = failed.length === 0;
    const reason = commit ? undefined : `proxy thread ${failed.join(', ')} could not apply the configuration`;
    const finished = await this.ask<{ ok: boolean; generation: number; error?: string }>((id) => ({ t: 'reload-finish', id, prepareId, commit, ...(reason ? { reason } : {}) }));
    const threads = live.map((t) => {
      const p = prepared.find((a) => a.thread === t.index);
      const f = finished.find((a) => a.thread === t.index);
      const error = p && !p.m.ok ? p.m.error : !p ? 'no answer to the reload' : f?.m.error;
      return { thread: t.index, ok: commit && f?.m.ok === true, generation: f?.m.generation ?? 0, ...(error ? { error } : {}) };
    });
    const ok = commit && threads.length === this.threads.length && threads.every((t) => t.ok);
    if (!(ok && res.ok)) void this.discovery.sync(this.config);
    if (ok && res.ok) {
      if (threadCount(res.config.system.workerThreads) !== this.threads.length) {
        this.logger.warn({ running: this.threads.length }, 'worker-threads changed: takes effect on restart');
      }
      this.config = res.config;
      this.adminOverrides = overrides;
      // As in every thread's ProxyCore: a drain ends with its target or upstream.
      for (const [name, set] of this.drains) {
        const u = res.config.upstreams.get(name);
        if (!u) this.drains.delete(name);
        else for (const a of set) if (!u.targets.some((t) => t.address === a)) set.delete(a);
      }
      this.watchFiles();
      await this.replanAdmin();
    }
    const generation = threads[0]?.generation ?? 0;
    const error = threads.find((t) => t.error)?.error;
    const record: ReloadRecord = { at: new Date().toISOString(), trigger, ok, generation, ...(error ? { error } : {}) };
    this.reloadLog.push(record);
    if (this.reloadLog.length > 20) this.reloadLog.shift();
    this.audit.reload({ trigger, ok, generation, ...(error ? { error } : {}) });
    return { ok, threads };
  }

  /** The admin listener and audit log after a committed reload (a bind failure is logged; the old listener keeps serving). */
  private async replanAdmin(): Promise<void> {
    try {
      (await this.audit.plan(this.config.observability.logging)).commit();
      this.adminServer = (await planAdmin(this.adminServer, adminSettings(this.config.adminApi), this.adminHost(), this.logger)).commit();
    } catch (err) {
      this.logger.error({ code: (err as { code?: string }).code ?? 'WEIR_ERR_LISTEN', err: (err as Error).message }, 'admin API listener not changed');
    }
  }

  /** Where the admin API listens, when it does. */
  adminAddress(): { host: string; port: number } | undefined {
    return this.adminServer?.address;
  }

  /** The admin API's view of every thread together (admin/host.ts). */
  private adminHost(): AdminHost {
    const answers = async <R>(make: (id: number) => ToThread, ms?: number): Promise<R[]> => (await this.ask<{ value: R }>(make, ms)).map((a) => a.m.value);
    return {
      configPath: this.opts.configPath,
      audit: this.audit,
      config: () => this.config,
      overrides: () => this.adminOverrides,
      apply: async (overrides, trigger) => {
        const r = await this.reload(trigger, overrides);
        return { ok: r.ok, generation: r.threads[0]?.generation ?? 0, ...(r.ok ? {} : { error: r.threads.find((t) => t.error)?.error ?? 'not every proxy thread applied the change' }) };
      },
      state: async () => mergeStates(await answers<ProxyState>((id) => ({ t: 'admin-state', id })), this.threads.length),
      drain: async (upstream, address, drain, timeoutMs): Promise<DrainOutcome> => {
        const set = this.drains.get(upstream) ?? new Set<string>();
        if (drain) this.drains.set(upstream, set.add(address));
        else set.delete(address);
        const all = await answers<DrainOutcome>((id) => ({ t: 'admin-drain', id, upstream, address, drain, timeoutMs }), timeoutMs + ANSWER_MS);
        return { drained: all.length === this.threads.length && all.every((d) => d.drained), inFlight: all.reduce((n, d) => n + d.inFlight, 0) };
      },
      reloadPlugin: async (name) => {
        const all = await answers<{ ok: boolean; error?: string }>((id) => ({ t: 'admin-plugin-reload', id, name }), PREPARE_MS);
        const failed = all.find((a) => !a.ok);
        return all.length === this.threads.length && !failed ? { ok: true } : { ok: false, error: failed?.error ?? 'a proxy thread did not answer' };
      },
      purge: async (spec) => (await answers<number>((id) => ({ t: 'admin-purge', id, spec }))).reduce((a, b) => a + b, 0),
      metrics: async () => {
        const all = await this.ask<{ metrics: MetricsJson }>((id) => ({ t: 'metrics-json', id }));
        const merged = AggregatorRegistry.aggregate<PrometheusContentType>(all.map((a) => a.m.metrics));
        return Registry.merge([merged, this.registry]).getMetricsAsJSON();
      },
      reloads: () => this.reloadLog,
    };
  }

  private watchFiles(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.opts.watch === false) return;
    this.watchers = watchConfigFiles(this.config.files, () => void this.reload('file'), this.logger);
  }

  private installSignals(): void {
    const on = (sig: NodeJS.Signals, f: () => void): void => {
      process.on(sig, f);
      this.signalHandlers.push([sig, f]);
    };
    on('SIGHUP', () => void this.reload('signal'));
    const shutdown = (sig: string): void => {
      this.logger.info({ signal: sig }, 'shutting down');
      void this.close().then(() => process.exit(0));
    };
    on('SIGTERM', () => shutdown('SIGTERM'));
    on('SIGINT', () => shutdown('SIGINT'));
  }

  /** Graceful shutdown of every thread (each drains up to graceful-shutdown-timeout). */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.discovery.close();
    for (const w of this.watchers) w.close();
    for (const t of this.restartTimers) clearTimeout(t);
    for (const [sig, f] of this.signalHandlers) process.off(sig, f);
    await this.adminServer?.close();
    const bound = this.config.system.gracefulShutdownTimeoutMs + 5_000;
    await Promise.all(this.threads.map(async (t) => {
      const w = t.worker;
      if (!w || w.threadId === -1) return;
      const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      this.post(t, { t: 'close' });
      let timer: NodeJS.Timeout | undefined;
      const late = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), bound)))]);
      clearTimeout(timer);
      if (late) {
        this.logger.warn({ thread: t.index }, 'proxy thread did not finish draining; terminating it');
        await w.terminate();
      }
    }));
    this.audit.close();
    this.logger.flush?.();
  }
}

/** One view of every thread's state: counts summed, health from any thread (shared memory), draining if any thread drains. */
function mergeStates(all: readonly ProxyState[], threads: number): ProxyState {
  const first = all[0];
  const byTarget = new Map<string, TargetState>();
  for (const s of all) {
    for (const u of s.upstreams) {
      for (const t of u.targets) {
        const k = `${u.name}\u0000${t.address}`;
        const prev = byTarget.get(k);
        byTarget.set(k, prev
          ? {
              ...prev, draining: prev.draining || t.draining, inFlight: prev.inFlight + t.inFlight, requests: prev.requests + t.requests, failures: prev.failures + t.failures,
              // Outlier detection is per thread: ejected on any, ejections summed.
              ejected: prev.ejected || t.ejected, healthy: prev.healthy && t.healthy,
              ...(t.ejections !== undefined ? { ejections: (prev.ejections ?? 0) + t.ejections, ejectionReason: t.ejectionReason ?? prev.ejectionReason } : {}),
            }
          : t);
      }
    }
  }
  return {
    generation: first?.generation ?? 0,
    ready: all.length === threads && all.every((s) => s.ready && s.generation === first!.generation),
    threads,
    inFlight: all.reduce((n, s) => n + s.inFlight, 0),
    upstreams: (first?.upstreams ?? []).map((u) => {
      const circuit = u.circuit === undefined ? undefined : worstCircuit(all.map((s) => s.upstreams.find((x) => x.name === u.name)?.circuit));
      const panic = all.some((s) => s.upstreams.find((x) => x.name === u.name)?.panic === true);
      return {
        name: u.name,
        ...(circuit !== undefined ? { circuit } : {}),
        ...(u.panic !== undefined ? { panic } : {}),
        targets: u.targets.map((t) => byTarget.get(`${u.name}\u0000${t.address}`) ?? t),
      };
    }),
  };
}

/** Each thread has its own breaker: open if any is, else half-open if any is. */
function worstCircuit(states: ReadonlyArray<string | undefined>): string {
  return states.includes('open') ? 'open' : states.includes('half-open') ? 'half-open' : 'closed';
}

export function startCluster(opts: ClusterOptions): Promise<Cluster> {
  return Cluster.start(opts);
}
