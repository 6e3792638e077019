/**
 * The proxy core: owns the current config snapshot, builds new ones on reload, serves
 * requests (via Exchange) and the built-in handlers, and records each finished exchange.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BuiltinHandler, FilterConfig, WeirConfig } from '../config/types.ts';
import { WeirError } from '../errors.ts';
import { FilterRegistry } from '../filters/registry.ts';
import type { Logger } from '../observability/logger.ts';
import { renderMetrics, type ProxyMetrics, type TargetState, type UpstreamHealthState } from '../observability/metrics.ts';
import { buildChain, type Chain } from '../pipeline/chain.ts';
import type { HeaderMap, Phase } from '../pipeline/phases.ts';
import { filterOnRoute } from '../pipeline/failure-mode.ts';
import { Router } from '../router/router.ts';
import { Upstream, upstreamKey } from '../upstream/upstream.ts';
import { Admission } from '../upstream/admission.ts';
import { Exchange, type DownstreamRequest, type DownstreamResponse } from './exchange.ts';
import { HttpCache } from '../cache/index.ts';
import type { BackgroundOrigin } from '../cache/phase.ts';
import { stripHopByHop } from './headers.ts';
import { compressionPhase } from '../compression/phase.ts';
import { compressionSettings } from '../compression/settings.ts';
import { staticPhase, staticSettings } from '../static/phase.ts';
import type { Snapshot } from './snapshot.ts';
import type { Tracing } from '../observability/tracing.ts';
import { AuditLog } from '../observability/audit.ts';

export interface CoreOptions {
  readonly logger: Logger;
  readonly accessLog: Logger | undefined;
  readonly metrics: ProxyMetrics;
  readonly filters?: FilterRegistry;
}

export class ProxyCore {
  readonly logger: Logger;
  accessLog: Logger | undefined;
  readonly metrics: ProxyMetrics;
  readonly filters: FilterRegistry;
  private current: Snapshot | undefined;
  private generation = 0;
  /** Exchanges in flight, for graceful drain. */
  inFlight = 0;
  draining = false;
  private drainWaiters: Array<() => void> = [];
  /** Upstreams by config identity, reused across reloads (warm pools). */
  private upstreamCache = new Map<string, Upstream>();
  /** The HTTP cache (host/src/cache/); its store outlives reloads. */
  readonly httpCache: HttpCache;
  /** Per-client caps and bounded waits for upstream connections. */
  readonly admission = new Admission();
  /** The audit log (admin calls, reloads, 401/403 denials); Weir opens it, a disabled one records nothing. */
  audit: AuditLog = AuditLog.into(undefined);
  /** Upstream name → addresses being drained (the admin API's drain), across reloads. */
  private readonly drains = new Map<string, Set<string>>();

  constructor(opts: CoreOptions) {
    this.logger = opts.logger;
    this.accessLog = opts.accessLog;
    this.metrics = opts.metrics;
    this.filters = opts.filters ?? new FilterRegistry();
    this.httpCache = new HttpCache(opts.metrics.registry);
    opts.metrics.targets = () => this.targetStates();
    opts.metrics.upstreamHealth = () => this.upstreamHealthStates();
  }

  /** Upstreams with a circuit breaker or outlier detection, for their gauges. */
  private *upstreamHealthStates(): Iterable<UpstreamHealthState> {
    if (!this.current) return;
    for (const up of this.current.upstreams.values()) {
      if (up.breaker === undefined && up.outlier === undefined) continue;
      yield { upstream: up.name, circuit: up.breaker?.state(), panic: up.outlier ? up.panicking() : undefined };
    }
  }

  /** Every target of the running snapshot, for the per-target gauges. */
  private *targetStates(): Iterable<TargetState> {
    if (!this.current) return;
    for (const up of this.current.upstreams.values()) {
      for (const t of up.targets) yield { upstream: up.name, address: t.address, healthy: t.healthy, inFlight: t.localInFlight, draining: up.draining.has(t.address), ejected: t.ejected };
    }
  }

  /**
   * One request to an upstream of the running config with no client attached: the cache's
   * background revalidations (stale-while-revalidate). A target is picked by the upstream's
   * balancing; the upstream's request timeout bounds it.
   */
  private readonly backgroundOrigin: BackgroundOrigin = async (name, head) => {
    const up = this.snapshot.upstreams.get(name);
    const target = up?.pick();
    if (!up || !target) throw new WeirError('WEIR_ERR_NO_HEALTHY_TARGET', `no target left in upstream ${name}`);
    const timeout = up.config.timeouts.requestMs;
    const r = await target.pool.request({ method: 'GET', path: head.path, headers: head.headers as Record<string, string>, headersTimeout: timeout, bodyTimeout: timeout });
    const body = Buffer.from(await r.body.arrayBuffer());
    return { status: r.statusCode, headers: stripHopByHop(r.headers as HeaderMap), body };
  };

  get snapshot(): Snapshot {
    if (!this.current) throw new WeirError('WEIR_ERR_INTERNAL', 'no configuration loaded');
    return this.current;
  }

  /**
   * Compiles a config into a snapshot (filters built, upstream pools reused where the
   * upstream is unchanged). Throws without touching the current snapshot if anything fails.
   */
  async compile(config: WeirConfig): Promise<Snapshot> {
    const env = { logger: this.logger, config };
    // One phase per filter and failure mode (a route's `policies failure-mode` may change it).
    const phases = new Map<string, Phase>();
    const phaseOf = async (f: FilterConfig): Promise<Phase> => {
      const key = `${f.name}\u0000${f.failureMode}`;
      let p = phases.get(key);
      if (!p) {
        const factory = this.filters.get(f.type);
        if (!factory) throw new WeirError('WEIR_ERR_CONFIG_VALUE', `${f.loc.file}:${f.loc.line}:${f.loc.column}: filter "${f.name}" has type "${f.type}", which this build does not provide (available: ${this.filters.types().join(', ')})`);
        phases.set(key, (p = await factory(f, env)));
      }
      return p;
    };
    for (const f of config.filters.values()) await phaseOf(f);
    const chains = new Map<string, Chain>();
    const prefixes = new Map<string, readonly string[]>();
    const cachePhases = this.httpCache.phases(config, this.backgroundOrigin);
    for (const r of config.routes) {
      const list: Phase[] = [];
      for (const n of r.filters) list.push(await phaseOf(filterOnRoute(config.filters.get(n)!, r)));
      // Built-ins last: the route's own filters run before a cache lookup, and after it on the response.
      const compress = compressionSettings(r.node);
      if (compress) list.push(compressionPhase(r.name, compress));
      const cached = cachePhases.get(r.name);
      if (cached) list.push(cached);
      const files = staticSettings(r.node);
      if (files) list.push(staticPhase(r.name, files));
      chains.set(r.name, buildChain(this.filters.combine ? await this.filters.combine(list) : list));
      const p = r.matches.flatMap((m) => m.pathPrefixes).sort((a, b) => b.length - a.length);
      if (p.length) prefixes.set(r.name, p);
    }
    const upstreams = new Map<string, Upstream>();
    const balancers = new Map<string, Phase>();
    for (const [name, u] of config.upstreams) {
      const b = this.filters.balancer ? await this.filters.balancer(u, env) : undefined;
      if (b) balancers.set(name, b);
      const key = upstreamKey(u);
      let up = this.upstreamCache.get(key);
      if (!up) up = new Upstream(u, this.logger);
      up.draining = this.drainSet(name);
      upstreams.set(name, up);
    }
    const assertedHeaders = [...new Set([...config.filters.values()].flatMap((f) => this.filters.asserts(f.type)))];
    // An unchanged tracing block keeps its provider (and the spans it has queued).
    const t = config.observability.tracing;
    const running = this.current?.tracing;
    let tracing: Tracing | undefined;
    if (t !== undefined) {
      // Loaded on first use: without a tracing block the OpenTelemetry SDK is never imported.
      const { Tracing: T, tracingKey } = await import('../observability/tracing.ts');
      tracing = running?.key === tracingKey(t) ? running : new T(t, this.metrics.registry);
    }
    return { generation: ++this.generation, config, router: new Router(config.routes), upstreams, balancers, chains, prefixes, assertedHeaders, tracing };
  }

  /** Makes `snap` current. In-flight requests keep the one they started with. */
  activate(snap: Snapshot): void {
    const old = this.current;
    this.current = snap;
    // Drains of upstreams or targets the new config no longer has end with them.
    for (const [name, set] of this.drains) {
      const u = snap.config.upstreams.get(name);
      if (!u) this.drains.delete(name);
      else for (const a of set) if (!u.targets.some((t) => t.address === a)) set.delete(a);
    }
    const keep = new Map<string, Upstream>();
    for (const up of snap.upstreams.values()) keep.set(upstreamKey(up.config), up);
    const dropped = [...this.upstreamCache.values()].filter((u) => !keep.has(upstreamKey(u.config)));
    this.upstreamCache = keep;
    if (old && dropped.length) {
      // Close pools no longer referenced once the requests on the old snapshot are done.
      this.whenIdleOr(30_000).then(() => Promise.all(dropped.map((u) => u.close()))).catch(() => {});
    }
    const oldTracing = old?.tracing;
    if (oldTracing !== undefined && oldTracing !== snap.tracing) {
      // Requests on the old snapshot end their spans on its provider: flush it once they are done.
      this.whenIdleOr(30_000).then(() => oldTracing.shutdown()).catch(() => {});
    }
  }

  private drainSet(upstream: string): Set<string> {
    let s = this.drains.get(upstream);
    if (!s) this.drains.set(upstream, (s = new Set()));
    return s;
  }

  /**
   * Starts or ends draining a target: no new request is sent to it (the balancers skip it);
   * resolves once its requests in flight are done, or after `timeoutMs`.
   */
  async drain(upstream: string, address: string, on: boolean, timeoutMs: number): Promise<{ drained: boolean; inFlight: number }> {
    const set = this.drainSet(upstream);
    const inFlight = (): number => {
      const t = this.current?.upstreams.get(upstream)?.targets.find((x) => x.address === address);
      return t?.localInFlight ?? 0;
    };
    if (!on) {
      set.delete(address);
      return { drained: false, inFlight: inFlight() };
    }
    set.add(address);
    const until = performance.now() + timeoutMs;
    // Requests end on their own schedule; a short poll of one counter is cheaper than a hook in every exchange.
    while (inFlight() > 0 && performance.now() < until && set.has(address)) await new Promise((r) => setTimeout(r, 10));
    const left = inFlight();
    return { drained: left === 0, inFlight: left };
  }

  /** Whether `address` of `upstream` is being drained. */
  isDraining(upstream: string, address: string): boolean {
    return this.drains.get(upstream)?.has(address) ?? false;
  }

  handle = (req: DownstreamRequest, res: DownstreamResponse): void => {
    this.inFlight++;
    this.metrics.inFlight.inc();
    const ex = new Exchange(this, this.snapshot, req, res);
    if (this.draining && req.httpVersionMajor === 1) (res as ServerResponse).setHeader('connection', 'close');
    ex.start();
  };

  builtin(ex: Exchange, handler: BuiltinHandler): void {
    const json = (status: number, obj: unknown): void => ex.sendLocal({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(obj) }, false);
    switch (handler) {
      case 'health':
        return json(200, { status: 'ok' });
      case 'ready':
        // Draining: load balancers in front should stop sending new requests.
        return this.draining ? ex.fail(new WeirError('WEIR_ERR_SHUTTING_DOWN', 'draining: not ready for new requests')) : json(200, { status: 'ready' });
      case 'metrics':
        renderMetrics(this.metrics.registry, ex.ctx.request.headers['accept']).then(
          (m) => ex.sendLocal({ status: 200, headers: { 'content-type': m.contentType }, body: m.text }, false),
          (err) => ex.fail(err),
        );
        return;
      case 'status':
        return json(200, this.status());
      case 'cache-stats':
        return json(200, this.httpCache.stats());
      case 'not-found':
        return ex.fail(new WeirError('WEIR_ERR_NO_ROUTE'));
    }
  }

  status(): unknown {
    const snap = this.snapshot;
    return {
      generation: snap.generation,
      inFlight: this.inFlight,
      draining: this.draining,
      routes: snap.config.routes.map((r) => r.name),
      upstreams: [...snap.upstreams.values()].map((u) => ({
        name: u.name,
        targets: u.targets.map((t) => ({ address: t.address, healthy: t.healthy, inFlight: t.localInFlight, ewmaLatencyMs: Math.round(t.ewmaLatencyMs * 100) / 100, requests: t.localRequests, failures: t.localTotalFailures })),
      })),
    };
  }

  /** Records a finished exchange: metrics and the access log line. */
  finish(ex: Exchange): void {
    this.inFlight--;
    const m = this.metrics;
    m.inFlight.dec();
    const ctx = ex.ctx;
    const status = ctx.error?.code === 'WEIR_ERR_CLIENT_ABORTED' ? 499 : (ctx.response?.status ?? 0);
    const route = ctx.routeName || '(none)';
    const seconds = (performance.now() - ctx.startTime) / 1000;
    m.requests.child(route, ctx.request.method, String(status)).value++;
    const trace = ex.trace;
    // A recorded trace is the bucket's exemplar (shown to OpenMetrics scrapers).
    m.requestDuration.child(route).observe(seconds, trace?.sampled ? trace.traceId : undefined);
    if (ctx.error) m.errors.labels(ctx.error.code).inc();
    if (trace !== undefined) trace.end(ctx.routeName, ctx.upstream?.name, status, ctx.error?.code, ctx.error?.code);
    if (this.accessLog) {
      this.accessLog.info({
        type: 'access',
        id: ctx.id,
        client: ctx.client.address,
        method: ctx.request.method,
        host: ctx.request.authority,
        path: ctx.request.path,
        query: ctx.request.query || undefined,
        route,
        // The identity an auth filter verified (API-key label, basic-auth user, JWT sub).
        user: ctx.properties.get('auth.subject'),
        upstream: ctx.upstream?.name,
        target: ctx.upstream?.target,
        status,
        bytesIn: ctx.bytesIn,
        bytesOut: ctx.bytesOut,
        ms: Math.round(seconds * 1e6) / 1000,
        attempts: ex.attempt || undefined,
        error: ctx.error?.code,
        traceId: trace?.traceId,
      });
    }
    if (ctx.error && ctx.error.code !== 'WEIR_ERR_CLIENT_ABORTED' && ctx.error.source !== 'downstream') {
      this.logger.warn({ id: ctx.id, route, code: ctx.error.code, err: ctx.error.message, detail: ctx.error.detail }, 'request failed');
    }
    if (this.inFlight === 0 && this.drainWaiters.length) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    }
  }

  /** Resolves when no exchange is in flight, or after `ms`. Returns true if idle. */
  whenIdleOr(ms: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      t.unref();
      this.drainWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  async close(): Promise<void> {
    await Promise.all([...this.upstreamCache.values()].map((u) => u.close()));
    await this.current?.tracing?.shutdown().catch(() => {});
  }
}

export type { IncomingMessage };
