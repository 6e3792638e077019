/**
 * What the host imports do, shared by every plugin instance of a Weir instance: logging
 * (pino, with the plugin's name and the request id), plugin-defined metrics (prom-client,
 * with a `plugin` label), the store (counters, token buckets, KV), geo lookups, time,
 * randomness and HTTP callouts.
 */
import { randomFillSync } from 'node:crypto';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { request } from 'undici';
import type { Logger } from '../../../host/src/observability/logger.ts';
import type { BucketResult, Store } from '../../../host/src/store/store.ts';
import type { GeoDb } from '../../../host/src/geo/geo.ts';
import type { HostImports } from '../../generated/codec.ts';
import type * as W from '../../generated/types.ts';
import { hostCrypto } from './host-crypto.ts';
import type { RequestSpan } from '../../../host/src/observability/tracing.ts';
import { exchangeImports, type ExchangeView } from './exchange.ts';

type AnyMetric = Counter<string> | Gauge<string> | Histogram<string>;

/** Span attributes Weir sets itself: a plugin cannot overwrite them (span-set-attribute ignores them). */
const RESERVED_SPAN_KEY = /^(?:http|url|server|client|network|weir)\.|^error\.type$/;

export interface HostServicesOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly store: Store;
  /** Opened on demand when a plugin imports geo-country. */
  geo?: GeoDb;
  /** The clock of now-ms and monotonic-ns (`weir plugin test` fakes it); default: the real ones. */
  readonly clock?: { nowMs(): bigint; monotonicNs(): bigint };
}

/** The per-call context host functions report against (set by the caller around each call). */
export interface CallScope {
  requestId: string | undefined;
  /** The instance's fuel global, which host calls charge (set once the instance exists). */
  fuel?: { value: bigint };
  /** performance.now() past which host calls fail (Infinity outside a hook). */
  deadline: number;
  /** Aborted when the call is given up (deadline, client gone): stops callouts. */
  signal?: AbortSignal;
  /** Set when nobody waits for the call any more: a resumed guest traps at once. */
  abandoned?: boolean;
  /** Host-call fuel charged but not yet taken from the fuel global (deadline.ts). */
  pendingFuel: number;
  /** Host calls made by this instance (deadline.ts checks the clock every so many). */
  hostCalls: number;
  /** Remote store calls in flight (their waits extend the deadline, see deadline.ts). */
  storeWaits?: number;
  /** The last error-level line the guest logged in this call (a panic message, before the trap). */
  lastError?: string;
  /** The calling request's trace span (span-set-attribute, span-add-event); undefined when not traced. */
  trace?: RequestSpan | undefined;
  /** The exchange the current hook runs for (what the `exchange` host functions read). */
  exchange?: ExchangeView | undefined;
}

export class HostServices {
  readonly logger: Logger;
  readonly registry: Registry;
  readonly store: Store;
  geo: GeoDb | undefined;
  private readonly metrics = new Map<string, { metric: AnyMetric; kind: W.MetricKind; labels: string[] }>();
  private readonly metricIds: string[] = [];
  private readonly rnd = new BigUint64Array(64);
  private rndAt = 64;

  constructor(opts: HostServicesOptions) {
    this.logger = opts.logger;
    this.registry = opts.registry;
    this.store = opts.store;
    this.geo = opts.geo;
    if (opts.clock) this.clock = opts.clock;
  }

  private readonly clock: { nowMs(): bigint; monotonicNs(): bigint } = { nowMs: () => BigInt(Date.now()), monotonicNs: () => process.hrtime.bigint() };

  /**
   * Host imports for one instance of `plugin`; `scope` tells which request is calling.
   * `store` overrides the runtime's store (a filter configured with its own backend). A
   * remote store answers with promises: the instance must then be set up for JSPI.
   */
  forPlugin(plugin: string, scope: CallScope, store: Store = this.store, geo?: GeoDb): HostImports {
    const log = this.logger.child({ plugin });
    const ns = `${plugin}\u0000`;
    const big = (n: number): bigint => BigInt(Math.trunc(n));
    const bucket = (r: BucketResult): W.TokenBucketResult => ({ allowed: r.allowed, remaining: r.remaining, retryAfterMs: big(r.retryAfterMs) });
    return {
      log: (level, message) => {
        const msg = message.length > 4096 ? `${message.slice(0, 4096)}…` : message;
        log[level === 'trace' ? 'trace' : level]({ requestId: scope.requestId }, msg);
      },
      defineMetric: (name, kind, help, labelNames) => this.defineMetric(plugin, name, kind, help, labelNames),
      recordMetric: (id, value, labelValues) => this.recordMetric(plugin, id, value, labelValues),
      // Local and shared-memory stores answer synchronously (no JSPI cost); remote ones with promises.
      counterAdd: (key, delta, windowMs) => {
        const r = store.counterAdd(ns + key, Number(delta), Math.max(1, Number(windowMs)));
        return typeof r === 'number' ? big(r) : r.then(big);
      },
      tokenBucketTake: (key, ratePerSec, burst, cost) => {
        const r = store.tokenBucketTake(ns + key, ratePerSec, burst, cost);
        return r instanceof Promise ? r.then(bucket) : bucket(r);
      },
      kvGet: (key) => store.kvGet(ns + key),
      kvCas: (key, value, expected, ttlMs) => store.kvCas(ns + key, value, expected, Number(ttlMs)),
      geoCountry: geo ? (ip) => geo.country(ip) : (ip) => this.geo?.country(ip),
      nowMs: () => this.clock.nowMs(),
      monotonicNs: () => this.clock.monotonicNs(),
      randomU64: () => {
        if (this.rndAt === this.rnd.length) {
          randomFillSync(this.rnd);
          this.rndAt = 0;
        }
        return this.rnd[this.rndAt++]!;
      },
      httpCallout: (req) => callout(req, scope),
      ...hostCrypto,
      spanSetAttribute: (key, value) => {
        if (scope.trace === undefined || key.length === 0 || RESERVED_SPAN_KEY.test(key)) return;
        scope.trace.setAttribute(key, value);
      },
      spanAddEvent: (name, attributes) => {
        if (scope.trace === undefined || name.length === 0) return;
        const attrs: Record<string, string> = {};
        for (const a of attributes) attrs[a.key] = a.value;
        scope.trace.addEvent(name, attrs);
      },
      ...exchangeImports(scope),
    };
  }

  private defineMetric(plugin: string, name: string, kind: W.MetricKind, help: string, labelNames: string[]): number {
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`);
    const full = `weir_plugin_${name}`;
    const key = `${plugin}\u0000${full}`;
    const existing = this.metricIds.indexOf(key);
    if (existing !== -1) return existing;
    let entry = this.metrics.get(full);
    if (!entry) {
      const labels = ['plugin', ...labelNames];
      const common = { name: full, help: help || name, labelNames: labels, registers: [this.registry] };
      const metric = kind === 'counter' ? new Counter(common) : kind === 'gauge' ? new Gauge(common) : new Histogram(common);
      entry = { metric, kind, labels: labelNames };
      this.metrics.set(full, entry);
    }
    this.metricIds.push(key);
    return this.metricIds.length - 1;
  }

  private recordMetric(plugin: string, id: number, value: number, labelValues: string[]): void {
    const key = this.metricIds[id];
    if (key === undefined) throw new Error(`record-metric: unknown metric id ${id}`);
    const entry = this.metrics.get(key.slice(key.indexOf('\u0000') + 1))!;
    const labels: Record<string, string> = { plugin };
    entry.labels.forEach((l, i) => (labels[l] = labelValues[i] ?? ''));
    if (entry.kind === 'counter') (entry.metric as Counter<string>).inc(labels, value);
    else if (entry.kind === 'gauge') (entry.metric as Gauge<string>).set(labels, value);
    else (entry.metric as Histogram<string>).observe(labels, value);
  }
}

/**
 * A callout never outlives the calling hook: its timeout ends a fifth of the time left (at
 * least 25 ms) before the hook's deadline, so the guest still has time to handle the timeout
 * error. A 10 % margin was too thin on a busy machine, where timers fire late: the hook then
 * missed its deadline after a callout that had timed out as designed.
 */
async function callout(req: W.CalloutRequest, scope: CallScope): Promise<W.Result<W.CalloutResponse, string>> {
  const remaining = scope.deadline - performance.now();
  const left = Math.floor(remaining - Math.max(remaining * 0.2, 25));
  const timeoutMs = Math.max(1, Math.min(req.timeoutMs || 5000, left));
  // Our own timer over the whole exchange (connect, head, body): undici's head and body
  // timeouts are coarse (fast timers) and per phase.
  const timer = AbortSignal.timeout(timeoutMs);
  const signal = scope.signal ? AbortSignal.any([scope.signal, timer]) : timer;
  try {
    const headers: Record<string, string> = {};
    for (const h of req.headers) headers[h.name] = h.value;
    const res = await request(req.url, {
      method: req.method as 'GET',
      headers,
      body: req.body.length ? req.body : undefined,
      signal,
    });
    const body = new Uint8Array(await res.body.arrayBuffer());
    const out: W.Header[] = [];
    for (const [name, v] of Object.entries(res.headers)) {
      if (v === undefined) continue;
      for (const value of Array.isArray(v) ? v : [v]) out.push({ name, value });
    }
    return { tag: 'ok', val: { status: res.statusCode, headers: out, body } };
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (scope.signal?.aborted) return { tag: 'err', val: 'WEIR_ERR_CLIENT_ABORTED' };
    if (timer.aborted) return { tag: 'err', val: 'WEIR_ERR_UPSTREAM_TIMEOUT' };
    return { tag: 'err', val: code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? 'WEIR_ERR_UPSTREAM_TIMEOUT' : `WEIR_ERR_UPSTREAM_CONNECT: ${(err as Error).message}` };
  }
}
