/**
 * Redis backend (ioredis), shared by every Weir instance that points at the same Redis.
 *
 * Each operation is one EVALSHA (ioredis defineCommand: EVALSHA, EVAL on NOSCRIPT), so it
 * is atomic and costs one round trip. Time comes from Redis (`TIME`), not from the calling
 * host, so instances with skewed clocks still share one window and one refill clock.
 *
 * - counter-add: fixed window; the window index is part of the key, INCRBY + PEXPIREAT.
 * - token-bucket-take: a token bucket (tokens + last refill in a hash), the same arithmetic
 *   as the local store, so moving a limit to Redis does not change what it admits. O(1)
 *   memory per key, where a sliding log (sorted set) would keep one member per request.
 * - kv: a hash {v, ver}; versions come from one INCR counter; CAS compares `ver` in Lua.
 *
 * `FallbackStore` wraps a remote store with a deadline per call and, when allowed, answers
 * from a local store while the remote one is down or slow (counted, logged, rate-limited),
 * going back to the remote one when it answers again.
 */
import { Redis } from 'ioredis';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../observability/logger.ts';
import { LocalStore } from './local.ts';
import type { BucketResult, KvEntry, Store } from './store.ts';

const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
`;

const COUNTER_LUA = `${NOW_MS}
local win = tonumber(ARGV[2])
local w = math.floor(now / win)
local k = KEYS[1] .. ':' .. string.format('%d', w)
local v = redis.call('INCRBY', k, ARGV[1])
redis.call('PEXPIREAT', k, string.format('%d', (w + 1) * win + 1000))
return v`;

const BUCKET_LUA = `${NOW_MS}
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens = tonumber(s[1])
local last = tonumber(s[2])
if tokens == nil or last == nil then tokens = burst; last = now end
local perMs = rate / 1000
if now > last then tokens = math.min(burst, tokens + (now - last) * perMs) end
last = math.max(now, last)
local allowed = 0
if tokens >= cost then tokens = tokens - cost; allowed = 1 end
local retry = -1
local reset = 0
if perMs > 0 then
  if allowed == 0 then retry = math.ceil((cost - tokens) / perMs) else retry = 0 end
  reset = math.ceil((burst - tokens) / perMs)
elseif allowed == 1 then retry = 0 end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'last', string.format('%.17g', last))
redis.call('PEXPIRE', KEYS[1], reset + 1000)
return {allowed, math.floor(tokens), retry, reset}`;

const CAS_LUA = `local cur = redis.call('HGET', KEYS[1], 'ver')
if ARGV[2] == '' then
  if cur then return false end
elseif cur ~= ARGV[2] then return false end
local ver = redis.call('INCR', KEYS[2])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'ver', ver)
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) else redis.call('PERSIST', KEYS[1]) end
return ver`;

interface WeirRedis extends Redis {
  weirCounter(key: string, delta: number, windowMs: number): Promise<number>;
  weirBucket(key: string, rate: number, burst: number, cost: number): Promise<[number, number, number, number]>;
  weirCas(key: string, versionKey: string, value: Buffer, expected: string, ttlMs: number): Promise<number | null>;
}

export interface RedisStoreOptions {
  readonly url: string;
  readonly prefix?: string;
  readonly poolSize?: number;
  readonly timeoutMs?: number;
}

export class RedisStore implements Store {
  readonly kind = 'redis';
  readonly remote = true;
  readonly prefix: string;
  private readonly clients: WeirRedis[];
  private next = 0;

  constructor(opts: RedisStoreOptions) {
    this.prefix = opts.prefix ?? 'weir:';
    const timeout = opts.timeoutMs ?? 50;
    this.clients = Array.from({ length: Math.max(1, opts.poolSize ?? 1) }, () => {
      const c = new Redis(opts.url, {
        lazyConnect: false,
        connectTimeout: Math.max(timeout, 1000),
        commandTimeout: timeout,
        // Fail fast while reconnecting; the fallback (or the filter's failure mode) decides.
        maxRetriesPerRequest: 0,
        enableOfflineQueue: true,
        retryStrategy: (times) => Math.min(50 * times, 1000),
      }) as WeirRedis;
      c.on('error', () => {}); // connection errors surface per call
      c.defineCommand('weirCounter', { numberOfKeys: 1, lua: COUNTER_LUA });
      c.defineCommand('weirBucket', { numberOfKeys: 1, lua: BUCKET_LUA });
      c.defineCommand('weirCas', { numberOfKeys: 2, lua: CAS_LUA });
      return c;
    });
  }

  private client(): WeirRedis {
    const c = this.clients[this.next]!;
    this.next = (this.next + 1) % this.clients.length;
    return c;
  }

  /** True while at least one connection is up. */
  get ready(): boolean {
    return this.clients.some((c) => c.status === 'ready');
  }

  onReady(f: () => void): void {
    for (const c of this.clients) c.on('ready', f);
  }

  async counterAdd(key: string, delta: number, windowMs: number): Promise<number> {
    return Number(await this.client().weirCounter(`${this.prefix}c:${key}`, Math.trunc(delta), Math.max(1, Math.trunc(windowMs))));
  }

  async tokenBucketTake(key: string, ratePerSec: number, burst: number, cost: number): Promise<BucketResult> {
    const [allowed, remaining, retry, reset] = await this.client().weirBucket(`${this.prefix}b:${key}`, ratePerSec, burst, cost);
    return { allowed: allowed === 1, remaining: Number(remaining), retryAfterMs: retry < 0 ? Number.MAX_SAFE_INTEGER : Number(retry), resetMs: Number(reset) };
  }

  async kvGet(key: string): Promise<KvEntry | undefined> {
    const [v, ver] = await this.client().hmgetBuffer(`${this.prefix}kv:${key}`, 'v', 'ver');
    if (v === null || ver === null) return undefined;
    return { value: new Uint8Array(v), version: BigInt(ver.toString()) };
  }

  async kvCas(key: string, value: Uint8Array, expected: bigint | undefined, ttlMs: number): Promise<bigint | undefined> {
    const r = await this.client().weirCas(`${this.prefix}kv:${key}`, `${this.prefix}kv-version`, Buffer.from(value), expected === undefined ? '' : String(expected), Math.max(0, Math.trunc(ttlMs)));
    return r === null ? undefined : BigInt(r);
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((c) => c.quit().catch(() => c.disconnect())));
  }
}

/** A remote store that may go down: what FallbackStore needs from it. */
export interface RemoteStore extends Store {
  readonly ready: boolean;
  onReady(f: () => void): void;
}

export interface FallbackOptions {
  readonly logger: Logger;
  readonly registry?: Registry;
  /** Per-call deadline, ms. */
  readonly timeoutMs: number;
  /** Answer from a local store while the remote one is down (else calls fail). */
  readonly fallback: boolean;
  /** How long to stay on the local store after a failure before trying the remote again. */
  readonly retryMs?: number;
}

const LOG_EVERY_MS = 10_000;

class Timeout extends Error {}

function metric<T>(registry: Registry | undefined, name: string, make: (registers: Registry[]) => T): T {
  return (registry?.getSingleMetric(name) as T | undefined) ?? make(registry ? [registry] : []);
}

/** The remote store's metrics on `registry` (registered once, shared by every store of it). */
export function storeMetrics(registry: Registry | undefined): { fallback: Counter<'backend'>; up: Gauge<'backend'> } {
  return {
    fallback: metric(registry, 'weir_store_fallback_total', (registers) => new Counter({ name: 'weir_store_fallback_total', help: 'Store calls answered by the local fallback because the remote store was down or slow', labelNames: ['backend'], registers })),
    up: metric(registry, 'weir_store_remote_up', (registers) => new Gauge({ name: 'weir_store_remote_up', help: '1 while the remote store answers, 0 while calls fall back or fail', labelNames: ['backend'], registers })),
  };
}

/**
 * Deadline + fallback around a remote store. While the remote is down, one call at a time
 * probes it (after `retryMs`); the rest answer locally at once instead of each waiting out
 * the deadline.
 */
export class FallbackStore implements Store {
  readonly kind: string;
  readonly remote = true;
  readonly primary: RemoteStore;
  readonly local: LocalStore;
  private readonly opts: FallbackOptions;
  private readonly retryMs: number;
  private down = false;
  private retryAt = 0;
  private probing = false;
  private sinceLog = 0;
  private lastLog = 0;
  /** Calls answered locally (also in weir_store_fallback_total). */
  fallbacks = 0;
  private readonly fallbackMetric: Counter<'backend'>;
  private readonly upMetric: Gauge<'backend'>;

  constructor(primary: RemoteStore, opts: FallbackOptions) {
    this.kind = primary.kind;
    this.primary = primary;
    this.local = new LocalStore();
    this.opts = opts;
    this.retryMs = opts.retryMs ?? 1000;
    const m = storeMetrics(opts.registry);
    this.fallbackMetric = m.fallback;
    this.upMetric = m.up;
    this.upMetric.labels(this.kind).set(1);
    primary.onReady(() => {
      if (this.down) this.recovered();
    });
  }

  private recovered(): void {
    this.down = false;
    this.upMetric.labels(this.kind).set(1);
    this.opts.logger.info({ backend: this.kind, fallbacks: this.fallbacks }, 'remote store is back; using it again');
  }

  private failed(err: unknown): void {
    const now = Date.now();
    this.retryAt = now + this.retryMs;
    if (!this.down) {
      this.down = true;
      this.upMetric.labels(this.kind).set(0);
    }
    this.sinceLog++;
    if (now - this.lastLog >= LOG_EVERY_MS) {
      this.opts.logger.warn({ backend: this.kind, err: (err as Error).message, failures: this.sinceLog, fallback: this.opts.fallback }, this.opts.fallback ? 'remote store unavailable; answering from the local fallback' : 'remote store unavailable');
      this.lastLog = now;
      this.sinceLog = 0;
    }
  }

  private async call<T>(remote: () => Promise<T>, local: () => T): Promise<T> {
    if (this.down) {
      const probe = !this.probing && Date.now() >= this.retryAt;
      if (!probe) return this.fallBack(local, new Error('remote store is down'));
      this.probing = true;
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = await Promise.race([
        remote(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Timeout(`${this.kind} did not answer within ${this.opts.timeoutMs} ms`)), this.opts.timeoutMs);
        }),
      ]);
      if (this.down) this.recovered();
      return r;
    } catch (err) {
      this.failed(err);
      return this.fallBack(local, err);
    } finally {
      clearTimeout(timer);
      this.probing = false;
    }
  }

  private fallBack<T>(local: () => T, err: unknown): T {
    if (!this.opts.fallback) throw err instanceof Error ? err : new Error(String(err));
    this.fallbacks++;
    this.fallbackMetric.labels(this.kind).inc();
    return local();
  }

  counterAdd(key: string, delta: number, windowMs: number): Promise<number> {
    return this.call(() => this.primary.counterAdd(key, delta, windowMs) as Promise<number>, () => this.local.counterAdd(key, delta, windowMs));
  }

  tokenBucketTake(key: string, ratePerSec: number, burst: number, cost: number): Promise<BucketResult> {
    return this.call(() => this.primary.tokenBucketTake(key, ratePerSec, burst, cost) as Promise<BucketResult>, () => this.local.tokenBucketTake(key, ratePerSec, burst, cost));
  }

  kvGet(key: string): Promise<KvEntry | undefined> {
    return this.call(() => this.primary.kvGet(key) as Promise<KvEntry | undefined>, () => this.local.kvGet(key));
  }

  kvCas(key: string, value: Uint8Array, expected: bigint | undefined, ttlMs: number): Promise<bigint | undefined> {
    return this.call(() => this.primary.kvCas(key, value, expected, ttlMs) as Promise<bigint | undefined>, () => this.local.kvCas(key, value, expected, ttlMs));
  }

  async close(): Promise<void> {
    this.local.close();
    await this.primary.close();
  }
}
