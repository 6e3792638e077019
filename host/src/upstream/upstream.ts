/**
 * Upstreams at run time: one undici Pool per target (keep-alive, sized by the config's
 * connection-pool), live per-target stats for load balancing, passive outlier ejection and
 * optional active health checks. Survives config reloads when the upstream's config is
 * unchanged, so warm connections are kept.
 */
import { readFileSync } from 'node:fs';
import { Pool, buildConnector, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/types.ts';
import type { TargetStats } from '../pipeline/phases.ts';
import type { Logger } from '../observability/logger.ts';
import type { SharedTargetSlot, SharedTargetTable } from '../store/shared.ts';
import { H2Client, type H2ClientOptions } from './h2-client.ts';
import { grpcHealthProbe } from './grpc-health.ts';
import { CircuitBreaker } from './breaker.ts';
import { OutlierDetector, type OutlierState } from './outlier.ts';

/** Consecutive connect failures after which a target is ejected for a while. */
const EJECT_AFTER_FAILURES = 5;
const EJECT_BASE_MS = 5_000;
const EWMA_DECAY_MS = 10_000;

/**
 * With several proxy threads, health and ejection state live in shared memory (one slot
 * per upstream + address) so every thread agrees; one thread runs the active checks.
 */
let sharedTargets: { table: SharedTargetTable; runHealthChecks: boolean } | undefined;

export function useSharedTargetState(table: SharedTargetTable | undefined, runHealthChecks: boolean): void {
  sharedTargets = table ? { table, runHealthChecks } : undefined;
}

function ejectionMs(streak: number): number {
  return streak >= EJECT_AFTER_FAILURES ? EJECT_BASE_MS * 2 ** Math.min(streak - EJECT_AFTER_FAILURES, 5) : 0;
}

export class Target implements TargetStats {
  readonly index: number;
  readonly address: string;
  readonly host: string;
  readonly port: number;
  /** `target weight=` as written (what select-upstream plugins see). */
  readonly weight: number;
  readonly zone: string;
  readonly origin: string;
  /** The connection pool; replaced every max-lifetime (see rotate). */
  pool: Dispatcher;
  private readonly poolOptions: Pool.Options;
  private rotation: NodeJS.Timeout | undefined;
  /**
   * This thread's attempts in flight to the target and its counts: what its connection pool
   * admits by, and what its state reports (the supervisor sums threads). Balancers read the
   * getters below, which are every thread's.
   */
  localInFlight = 0;
  localRequests = 0;
  localTotalFailures = 0;
  private localEwmaMs = 0;
  private localLastFailureMs = 0;
  private localFailures = 0;
  private localActiveHealthy = true;
  private localEjectedUntil = 0;
  /** Shared across proxy threads when there are several (see useSharedTargetState). */
  private readonly shared: SharedTargetSlot | undefined;
  private lastSampleMs = 0;
  /** Smooth weighted round robin state. */
  currentWeight = 0;
  /** Set by the Upstream when it has `outlier-detection` (which then decides ejection). */
  outlier: OutlierDetector | undefined;
  private readonly slowStartMs: number;
  /** When it last came back (health check passing again, ejection over); 0 = never left. */
  private recoveredAt = 0;
  private wasHealthy = true;

  /** Outlier-detection state of this target, with `outlier-detection`. */
  get outlierState(): OutlierState | undefined {
    return this.outlier?.states[this.index];
  }

  /**
   * The share of its weight the target has under `slow-start-secs`: from 0.01 to 1, linearly,
   * since it came back (1 when it never left or slow start is off).
   */
  slowStartFactor(): number {
    if (this.slowStartMs <= 0) return 1;
    const od = this.outlierState;
    const now = Date.now();
    const back = Math.max(this.recoveredAt, od !== undefined && od.ejections > 0 && od.ejectedUntil <= now ? od.ejectedUntil : 0);
    if (back === 0) return 1;
    const f = (now - back) / this.slowStartMs;
    return f >= 1 ? 1 : Math.max(0.01, f);
  }

  constructor(index: number, cfg: UpstreamConfig, t: UpstreamConfig['targets'][number]) {
    this.index = index;
    this.address = t.address;
    this.host = t.host;
    this.port = t.port;
    this.weight = t.weight;
    this.slowStartMs = cfg.slowStartMs;
    this.zone = t.zone ?? '';
    this.shared = sharedTargets?.table.slot(cfg.name, t.address);
    const secure = cfg.tls !== undefined;
    const hostPart = t.host.includes(':') && !t.host.startsWith('[') ? `[${t.host}]` : t.host;
    this.origin = `${secure ? 'https' : 'http'}://${hostPart}:${t.port}`;
    const pool = cfg.connectionPool;
    const tls = cfg.tls;
    const connect = {
      timeout: cfg.timeouts.connectMs,
      ...(tls
        ? {
            rejectUnauthorized: tls.verify,
            servername: tls.sni ?? (isIp(t.host) ? undefined : t.host),
            ca: tls.caFile ? readFileSync(tls.caFile) : undefined,
            cert: tls.clientCert ? readFileSync(tls.clientCert) : undefined,
            key: tls.clientKey ? readFileSync(tls.clientKey) : undefined,
          }
        : {}),
    };
    const allowH2 = cfg.protocol === 'h2';
    const useH2c = allowH2 && !secure;
    this.poolOptions = {
      connections: pool.maxConnections,
      pipelining: 1,
      keepAliveTimeout: pool.idleTimeoutMs,
      keepAliveMaxTimeout: pool.idleTimeoutMs,
      headersTimeout: cfg.timeouts.requestMs,
      bodyTimeout: cfg.timeouts.readMs,
      allowH2,
      ...(useH2c ? { useH2c: true } : {}),
      connect: tls ? fixedNameConnector(buildConnector({ ...connect, allowH2 }), connect.servername) : connect,
    };
    this.tlsName = tls ? tls.sni ?? t.host : undefined;
    // HTTP/2 targets use Weir's own client on node:http2 (h2-client.ts explains why).
    if (allowH2) {
      this.h2Options = {
        host: t.host,
        port: t.port,
        tls: tls ? { rejectUnauthorized: connect.rejectUnauthorized, ca: connect.ca, cert: connect.cert, key: connect.key, servername: this.tlsName !== undefined && !isIp(this.tlsName) ? this.tlsName : undefined } : undefined,
        connectTimeoutMs: cfg.timeouts.connectMs,
        idleTimeoutMs: pool.idleTimeoutMs,
        headersTimeoutMs: cfg.timeouts.requestMs,
        bodyTimeoutMs: cfg.timeouts.readMs,
      };
    }
    this.pool = this.newPool();
    // Connection max-lifetime: a fresh pool every max-lifetime; the old one closes once its
    // requests finish. (undici's clientTtl would do it per connection, but it costs a clock
    // read per busy connection on every dispatch.)
    if (pool.maxLifetimeMs > 0) {
      this.rotation = setInterval(() => this.rotate(), pool.maxLifetimeMs);
      this.rotation.unref();
    }
  }

  /** Set for `protocol "h2"` targets. */
  private readonly h2Options: H2ClientOptions | undefined;

  /** The TLS name every request to this target carries (sni, else the target host); see newPool. */
  private readonly tlsName: string | undefined;

  /**
   * A pool for this target. Over TLS, undici takes a request's SNI name from its Host header
   * unless the request names one, so the client's Host would pick the name sent and checked
   * against the certificate. Each request carries the target's own name instead: the
   * configured sni or the target host (an IP host sends no SNI and is checked as an IP, by
   * the connect options above). One name per target also keeps undici from dropping a
   * connection each time the Host changes.
   */
  private newPool(): Dispatcher {
    if (this.h2Options) return new H2Client(this.h2Options);
    const pool = new Pool(this.origin, this.poolOptions);
    const servername = this.tlsName;
    if (servername === undefined) return pool;
    return pool.compose((dispatch) => (opts, handler) => dispatch({ ...opts, servername } as Dispatcher.DispatchOptions, handler));
  }

  private rotate(): void {
    const old = this.pool;
    this.pool = this.newPool();
    old.close().catch(() => old.destroy());
  }

  /** Stops rotation and closes the pool (waiting for its requests). */
  async close(): Promise<void> {
    clearInterval(this.rotation);
    await this.pool.close().catch(() => this.pool.destroy());
  }

  /** Attempts in flight from every proxy thread (select-upstream's view). */
  get inFlight(): number {
    return this.shared ? this.shared.inFlight() : this.localInFlight;
  }

  get totalRequests(): number {
    return this.shared ? this.shared.totalRequests() : this.localRequests;
  }

  get totalFailures(): number {
    return this.shared ? this.shared.totalFailures() : this.localTotalFailures;
  }

  get lastFailureMs(): number {
    return this.shared ? this.shared.lastFailureMs() : this.localLastFailureMs;
  }

  /** Time-decayed latency EWMA over every thread's responses. */
  get ewmaLatencyMs(): number {
    return this.shared ? this.shared.ewmaLatencyMs() : this.localEwmaMs;
  }

  /** An attempt is sent to the target. */
  begin(): void {
    this.localInFlight++;
    this.localRequests++;
    this.shared?.begin();
  }

  /** The attempt begun last on this target by the caller ended. */
  end(): void {
    this.localInFlight--;
    this.shared?.end();
  }

  get consecutiveFailures(): number {
    return this.shared ? this.shared.consecutiveFailures() : this.localFailures;
  }

  /** Set by active health checks. */
  get activeHealthy(): boolean {
    return this.shared ? this.shared.activeHealthy() : this.localActiveHealthy;
  }

  set activeHealthy(v: boolean) {
    if (this.shared) this.shared.setActiveHealthy(v);
    else this.localActiveHealthy = v;
  }

  /** Passive ejection: unhealthy until this time (Date.now()). */
  get ejectedUntil(): number {
    const od = this.outlierState;
    if (od !== undefined) return od.ejectedUntil;
    return this.shared ? this.shared.ejectedUntil() : this.localEjectedUntil;
  }

  /** Passively ejected (repeated connect failures) right now. */
  get ejected(): boolean {
    const until = this.ejectedUntil;
    return until !== 0 && until > Date.now();
  }

  get healthy(): boolean {
    const until = this.ejectedUntil;
    const ok = this.activeHealthy && (until === 0 || until <= Date.now());
    // Seen coming back (by any thread's checks): slow start counts from here.
    if (ok !== this.wasHealthy) {
      this.wasHealthy = ok;
      if (ok && this.activeHealthy) this.recoveredAt = Math.max(this.recoveredAt, Date.now());
    }
    return ok;
  }

  /** The active health check passed again after failing. */
  markRecovered(): void {
    this.recoveredAt = Date.now();
  }

  recordSuccess(latencyMs: number): void {
    if (this.shared) this.shared.success();
    else {
      this.localFailures = 0;
      this.localEjectedUntil = 0;
    }
    // Time-decayed EWMA (as peak-EWMA balancers use): older samples fade with time, not count.
    const now = Date.now();
    if (this.shared) return this.shared.sample(latencyMs, now, EWMA_DECAY_MS);
    if (this.lastSampleMs === 0) this.localEwmaMs = latencyMs;
    else {
      const w = Math.exp(-(now - this.lastSampleMs) / EWMA_DECAY_MS);
      this.localEwmaMs = this.localEwmaMs * w + latencyMs * (1 - w);
    }
    this.lastSampleMs = now;
  }

  recordFailure(connectFailure: boolean): void {
    this.localTotalFailures++;
    const now = Date.now();
    this.localLastFailureMs = now;
    // With outlier-detection, it alone ejects (Upstream.observe).
    const eject = (streak: number): number => (connectFailure && this.outlier === undefined ? ejectionMs(streak) : 0);
    if (this.shared) {
      this.shared.failure(now, eject);
      return;
    }
    this.localFailures++;
    const ms = eject(this.localFailures);
    if (ms > 0) this.localEjectedUntil = now + ms;
  }
}

/**
 * Connects with the target's own TLS name whatever name the request carried (undici passes
 * the request's, which it derives from the Host header when none is given): `servername`
 * undefined means no SNI, the certificate then being checked against the target's IP.
 */
function fixedNameConnector(connector: buildConnector.connector, servername: string | undefined): buildConnector.connector {
  return (opts, cb) => connector({ ...opts, servername }, cb);
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

export class Upstream {
  readonly name: string;
  readonly config: UpstreamConfig;
  readonly targets: readonly Target[];
  /** Retries in flight, for the retry budget. */
  retriesInFlight = 0;
  inFlight = 0;
  /** Addresses being drained through the admin API: no new request goes to them. Shared by every Upstream of this name (ProxyCore.drainSet). */
  draining: ReadonlySet<string> = new Set();
  /** Requests waiting for a connection (admission.ts), for `max-pending-requests`. */
  pending = 0;
  /** `circuit-breaker`, if written (else `circuitOpen` is the breaker). */
  readonly breaker: CircuitBreaker | undefined;
  readonly outlier: OutlierDetector | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private readonly logger: Logger;

  constructor(config: UpstreamConfig, logger: Logger) {
    this.name = config.name;
    this.config = config;
    this.targets = config.targets.map((t, i) => new Target(i, config, t));
    this.logger = logger.child({ upstream: config.name });
    this.breaker = config.circuitBreaker ? new CircuitBreaker(config.circuitBreaker) : undefined;
    const od = config.outlierDetection;
    this.outlier = od
      ? new OutlierDetector(od, this.targets.length, (i, reason, ms) => this.logger.warn({ target: this.targets[i]!.address, reason, ejectedMs: ms }, 'target ejected'))
      : undefined;
    for (const t of this.targets) t.outlier = this.outlier;
    if (config.healthCheck && (sharedTargets === undefined || sharedTargets.runHealthChecks)) this.startHealthChecks(config.healthCheck);
  }

  /**
   * Default balancing when no select-upstream filter chose: smooth weighted round robin
   * over healthy targets (nginx's algorithm), skipping `exclude` (targets already tried).
   * If every target is unhealthy by active checks, tries them anyway (fail open, like
   * Envoy's panic mode); targets ejected for repeated connect failures are not tried until
   * their ejection ends (see `circuitOpen`).
   */
  pick(exclude?: ReadonlySet<number>): Target | undefined {
    let best: Target | undefined;
    let total = 0;
    // Panic mode (outlier-detection panic-threshold): too few available, so every target is.
    const panic = this.panicking();
    for (const pass of panic ? ['all'] : ['healthy', 'not-ejected']) {
      for (const t of this.targets) {
        if (exclude?.has(t.index) || t.weight <= 0 || this.draining.has(t.address)) continue;
        if (pass === 'healthy' ? !t.healthy : pass === 'not-ejected' && t.ejected) continue;
        // Slow start ramps the weight of a target that came back.
        const w = t.weight * t.slowStartFactor();
        t.currentWeight += w;
        total += w;
        if (best === undefined || t.currentWeight > best.currentWeight) best = t;
      }
      if (best) break;
    }
    if (best) best.currentWeight -= total;
    return best;
  }

  /** Fewer than `panic-threshold` percent of the targets are available (needs `outlier-detection`). */
  panicking(): boolean {
    const p = this.config.outlierDetection?.panicThreshold ?? 0;
    if (p <= 0 || this.targets.length === 0) return false;
    let available = 0;
    for (const t of this.targets) if (t.healthy) available++;
    return available * 100 < p * this.targets.length;
  }

  /** One attempt's outcome for outlier detection (a status, or undefined for no response). */
  observe(target: Target, status: number | undefined): void {
    if (this.outlier === undefined) return;
    const outcome = status === undefined || status === 502 || status === 503 || status === 504 ? 'gateway' : status >= 500 ? '5xx' : 'success';
    this.outlier.observe(target.index, outcome);
  }

  /**
   * The upstream's circuit breaker is open: every target is ejected after repeated connect
   * failures. Requests fail fast (503 WEIR_ERR_CIRCUIT_OPEN) until the first ejection ends;
   * the next request then tries that target (half-open) and a success closes the circuit.
   */
  circuitOpen(): boolean {
    return this.targets.length > 0 && this.targets.every((t) => t.ejected);
  }

  private startHealthChecks(hc: NonNullable<UpstreamConfig['healthCheck']>): void {
    const streaks = this.targets.map(() => 0);
    const bodyMatch = hc.bodyMatch === undefined ? undefined : new RegExp(hc.bodyMatch);
    const run = async (): Promise<void> => {
      await Promise.all(
        this.targets.map(async (t, i) => {
          let ok = false;
          const was = t.activeHealthy;
          try {
            if (hc.type === 'tcp') {
              ok = await tcpProbe(t.host, t.port, hc.timeoutMs);
            } else if (hc.type === 'grpc') {
              ok = await grpcHealthProbe(t.pool, hc.service, hc.timeoutMs);
            } else {
              const headers: Record<string, string> = { 'user-agent': 'weir-health-check' };
              if (hc.host !== undefined) headers['host'] = hc.host;
              const res = await t.pool.request({ method: hc.method as Dispatcher.HttpMethod, path: hc.path, headersTimeout: hc.timeoutMs, bodyTimeout: hc.timeoutMs, headers, signal: AbortSignal.timeout(hc.timeoutMs) });
              ok = hc.expectedStatus.length ? hc.expectedStatus.includes(res.statusCode) : res.statusCode < 400;
              if (bodyMatch === undefined) await res.body.dump();
              else ok = (await readPrefix(res.body, BODY_MATCH_BYTES)).match(bodyMatch) !== null && ok;
            }
          } catch {
            ok = false;
          }
          // streak > 0 counts successes, < 0 failures
          streaks[i] = ok ? Math.max(1, streaks[i]! + 1) : Math.min(-1, streaks[i]! - 1);
          if (!was && streaks[i]! >= hc.healthyThreshold) {
            t.activeHealthy = true;
            t.markRecovered();
            this.logger.info({ target: t.address }, 'target healthy');
          } else if (was && -streaks[i]! >= hc.unhealthyThreshold) {
            t.activeHealthy = false;
            this.logger.warn({ target: t.address }, 'target unhealthy');
          }
        }),
      );
    };
    const tick = (): void => {
      run().finally(() => {
        if (this.healthTimer !== undefined) this.healthTimer = setTimeout(tick, hc.intervalMs + Math.random() * hc.jitterMs).unref();
      });
    };
    this.healthTimer = setTimeout(tick, 0).unref();
  }

  async close(): Promise<void> {
    const timer = this.healthTimer;
    this.healthTimer = undefined;
    if (timer) clearTimeout(timer);
    this.outlier?.close();
    await Promise.all(this.targets.map((t) => t.close()));
  }
}

/** How much of a check's response body `body-match` reads. */
const BODY_MATCH_BYTES = 64 * 1024;

/** The first `max` bytes of a body as text; the rest is discarded. */
async function readPrefix(body: AsyncIterable<Buffer> & { destroy(): unknown }, max: number): Promise<string> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    parts.push(chunk);
    n += chunk.length;
    if (n >= max) {
      body.destroy();
      break;
    }
  }
  return Buffer.concat(parts).subarray(0, max).toString('utf8');
}

async function tcpProbe(host: string, port: number, timeoutMs: number): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Stable identity of an upstream's config, to reuse pools across reloads. */
export function upstreamKey(cfg: UpstreamConfig): string {
  const { loc: _loc, ...rest } = cfg;
  return JSON.stringify(rest);
}
