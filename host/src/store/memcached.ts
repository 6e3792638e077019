/**
 * memcached backend (memjs, binary protocol): fixed-window counters shared by every Weir
 * instance pointing at the same servers.
 *
 * - counter-add: one `incr` of `key:window` carrying an initial value and a TTL: the binary
 *   protocol adds the key on a miss (incr-or-add in one request); a lost creation race is
 *   retried as a plain incr, so no increment is lost or counted twice.
 *   The window index comes from the caller's clock (memcached has no server-side scripts).
 * - token-bucket-take: memcached has no scripts and memjs no CAS, so a bucket is answered
 *   by a fixed 1-second window of max(burst, ⌈rate⌉) tokens: never more than the bucket
 *   admits in an aligned second, but up to twice that across a window boundary.
 * - kv: values carry an 8-byte version; create-if-absent uses `add` (atomic); an update
 *   with an expected version is a get-compare-set, NOT atomic (memjs lacks `cas`).
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { BucketResult, KvEntry, Store } from './store.ts';

interface MemjsClient {
  increment(key: string, amount: number, opts: { initial?: number; expires?: number }): Promise<{ success: boolean; value: number | null }>;
  get(key: string): Promise<{ value: Buffer | null }>;
  set(key: string, value: Buffer, opts: { expires?: number }): Promise<boolean>;
  add(key: string, value: Buffer, opts: { expires?: number }): Promise<boolean>;
  close(): void;
}

interface Memjs {
  Client: { create(servers: string, opts: Record<string, unknown>): MemjsClient };
}

const memjs = createRequire(import.meta.url)('memjs') as Memjs;

export interface MemcachedStoreOptions {
  /** `memcache://host:port` or `host:port`, comma-separated for several servers. */
  readonly url: string;
  readonly prefix?: string;
  readonly poolSize?: number;
  readonly timeoutMs?: number;
  /** Seconds a counter lives (at least its window). */
  readonly ttlSecs?: number;
}

const quiet = { log: (): void => {} };

export class MemcachedStore implements Store {
  readonly kind = 'memcached';
  readonly remote = true;
  readonly prefix: string;
  private readonly clients: MemjsClient[];
  private readonly ttlSecs: number;
  private next = 0;
  private up = false;
  private readyHooks: Array<() => void> = [];
  /** Injectable clock for tests. */
  now: () => number = Date.now;

  constructor(opts: MemcachedStoreOptions) {
    this.prefix = opts.prefix ?? 'weir:';
    this.ttlSecs = opts.ttlSecs ?? 2;
    const servers = opts.url.split(',').map((s) => s.trim().replace(/^memcached?:\/\//, '')).join(',');
    const timeout = (opts.timeoutMs ?? 50) / 1000;
    this.clients = Array.from({ length: Math.max(1, opts.poolSize ?? 1) }, () =>
      // retries 1 = one attempt: the caller's fallback decides what happens next.
      memjs.Client.create(servers, { timeout, conntimeout: Math.max(timeout * 2, 1), retries: 1, failover: false, keepAlive: true, logger: quiet }),
    );
  }

  get ready(): boolean {
    return this.up;
  }

  onReady(f: () => void): void {
    this.readyHooks.push(f);
  }

  private client(): MemjsClient {
    const c = this.clients[this.next]!;
    this.next = (this.next + 1) % this.clients.length;
    return c;
  }

  /** memcached keys are ≤ 250 bytes without spaces or control characters: hash the rest. */
  private key(kind: string, key: string, suffix = ''): string {
    const k = `${this.prefix}${kind}:${key}${suffix}`;
    return /^[\x21-\x7e]{1,200}$/.test(k) ? k : `${this.prefix}${kind}#${createHash('sha256').update(key).digest('base64url')}${suffix}`;
  }

  private async track<T>(p: Promise<T>): Promise<T> {
    const r = await p;
    if (!this.up) {
      this.up = true;
      for (const f of this.readyHooks) f();
    }
    return r;
  }

  /**
   * incr, creating the key with `delta` on a miss. The server does incr → miss → add; when
   * two clients create the same key at once the loser's add fails (NOT_STORED) and nothing
   * was counted, so it increments again (the key exists now).
   */
  private async incr(key: string, delta: number, ttl: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.track(this.client().increment(key, delta, { initial: delta, expires: ttl }));
        if (!r.success || r.value === null) throw new Error('memcached incr failed');
        return r.value;
      } catch (err) {
        if (attempt < 3 && /not stored/i.test((err as Error).message)) continue;
        if (!/not stored/i.test((err as Error).message)) this.up = false;
        throw err;
      }
    }
  }

  async counterAdd(key: string, delta: number, windowMs: number): Promise<number> {
    const w = Math.floor(this.now() / windowMs);
    // incr cannot go below 0 or take a negative amount; counters only grow in a window.
    const d = Math.max(0, Math.trunc(delta));
    return this.incr(this.key('c', key, `:${w}`), d, Math.max(this.ttlSecs, Math.ceil(windowMs / 1000) + 1));
  }

  async tokenBucketTake(key: string, ratePerSec: number, burst: number, cost: number): Promise<BucketResult> {
    const now = this.now();
    const w = Math.floor(now / 1000);
    const limit = Math.max(burst, Math.ceil(ratePerSec));
    const used = await this.incr(this.key('b', key, `:${w}`), cost, Math.max(this.ttlSecs, 2));
    const allowed = used <= limit;
    const untilNext = (w + 1) * 1000 - now;
    return { allowed, remaining: Math.max(0, limit - used), retryAfterMs: allowed ? 0 : untilNext, resetMs: untilNext };
  }

  async kvGet(key: string): Promise<KvEntry | undefined> {
    try {
      const r = await this.track(this.client().get(this.key('kv', key)));
      if (!r.value || r.value.length < 8) return undefined;
      return { value: new Uint8Array(r.value.subarray(8)), version: r.value.readBigUInt64BE(0) };
    } catch (err) {
      this.up = false;
      throw err;
    }
  }

  async kvCas(key: string, value: Uint8Array, expected: bigint | undefined, ttlMs: number): Promise<bigint | undefined> {
    const k = this.key('kv', key);
    const cur = expected === undefined ? undefined : await this.kvGet(key);
    if (expected !== undefined && cur?.version !== expected) return undefined;
    const version = BigInt(await this.incr(this.key('kv-version', ''), 1, 0));
    const buf = Buffer.alloc(8 + value.length);
    buf.writeBigUInt64BE(version, 0);
    buf.set(value, 8);
    const expires = ttlMs > 0 ? Math.max(1, Math.ceil(ttlMs / 1000)) : 0;
    try {
      const c = this.client();
      const ok = await this.track(expected === undefined ? c.add(k, buf, { expires }) : c.set(k, buf, { expires }));
      return ok ? version : undefined;
    } catch (err) {
      this.up = false;
      throw err;
    }
  }

  close(): void {
    for (const c of this.clients) c.close();
  }
}
