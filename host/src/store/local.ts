/**
 * In-process store: Maps with expiry. Memory is bounded by `maxEntries` per kind (the
 * oldest entries go first) and a sweep drops expired entries.
 */
import { takeTokens, type BucketResult, type KvEntry, type Store } from './store.ts';

interface Counter { window: number; value: number; expires: number }
interface Bucket { tokens: number; last: number; expires: number }
interface Kv { value: Uint8Array; version: bigint; expires: number }

export class LocalStore implements Store {
  readonly kind = 'local';
  private readonly counters = new Map<string, Counter>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly kv = new Map<string, Kv>();
  private readonly maxEntries: number;
  private readonly timer: NodeJS.Timeout;
  private versions = 0n;
  /** Injectable clock for tests. */
  now: () => number = Date.now;

  constructor(opts: { maxEntries?: number; sweepMs?: number } = {}) {
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.timer = setInterval(() => this.sweep(), opts.sweepMs ?? 10_000);
    this.timer.unref();
  }

  counterAdd(key: string, delta: number, windowMs: number): number {
    const now = this.now();
    const w = Math.floor(now / windowMs);
    let c = this.counters.get(key);
    if (c === undefined || c.window !== w) {
      c = { window: w, value: 0, expires: (w + 1) * windowMs };
      this.put(this.counters, key, c);
    }
    c.value += delta;
    return c.value;
  }

  tokenBucketTake(key: string, ratePerSec: number, burst: number, cost: number): BucketResult {
    const now = this.now();
    let b = this.buckets.get(key);
    if (b === undefined) {
      b = { tokens: burst, last: now, expires: 0 };
      this.put(this.buckets, key, b);
    }
    const r = takeTokens(b, now, ratePerSec, burst, cost);
    // A full bucket carries no information: it can be forgotten once it would be full again.
    b.expires = now + r.resetMs + 1000;
    return r;
  }

  kvGet(key: string): KvEntry | undefined {
    const e = this.kv.get(key);
    if (e === undefined) return undefined;
    if (e.expires !== 0 && e.expires <= this.now()) {
      this.kv.delete(key);
      return undefined;
    }
    return { value: e.value, version: e.version };
  }

  kvCas(key: string, value: Uint8Array, expected: bigint | undefined, ttlMs: number): bigint | undefined {
    const cur = this.kvGet(key);
    if ((cur === undefined) !== (expected === undefined)) return undefined;
    if (cur !== undefined && cur.version !== expected) return undefined;
    const version = ++this.versions;
    this.put(this.kv, key, { value: value.slice(), version, expires: ttlMs > 0 ? this.now() + ttlMs : 0 });
    return version;
  }

  private put<V>(map: Map<string, V>, key: string, v: V): void {
    map.delete(key);
    map.set(key, v);
    if (map.size > this.maxEntries) map.delete(map.keys().next().value!);
  }

  sweep(): void {
    const now = this.now();
    for (const map of [this.counters, this.buckets, this.kv] as Array<Map<string, { expires: number }>>) {
      for (const [k, v] of map) if (v.expires !== 0 && v.expires <= now) map.delete(k);
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
