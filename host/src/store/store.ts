/**
 * The state plugins share: windowed counters, token buckets and a KV store with
 * compare-and-swap. One interface, several backends (local memory now; shared memory across
 * threads and Redis across machines plug in behind it). Local backends answer
 * synchronously so inline plugins stay on the synchronous call path; remote ones return
 * promises, which the plugin runtime awaits through JSPI.
 */

export interface BucketResult {
  readonly allowed: boolean;
  /** Whole tokens left after this take. */
  readonly remaining: number;
  /** When a take of the same cost would succeed (0 if allowed). */
  readonly retryAfterMs: number;
  /** When the bucket will be full again. */
  readonly resetMs: number;
}

export interface KvEntry {
  readonly value: Uint8Array;
  /** Increases on every successful write; CAS compares it. */
  readonly version: bigint;
}

export type MaybePromise<T> = T | Promise<T>;

export interface Store {
  readonly kind: string;
  /** Answers with promises (Redis, memcached): plugins using it call the store through JSPI. */
  readonly remote?: boolean;
  /**
   * Adds `delta` to `key` in the current fixed window of `windowMs` (windows are aligned to
   * the epoch) and returns the window's new total.
   */
  counterAdd(key: string, delta: number, windowMs: number): MaybePromise<number>;
  /** Takes `cost` tokens from a bucket refilled at `ratePerSec` up to `burst`. */
  tokenBucketTake(key: string, ratePerSec: number, burst: number, cost: number): MaybePromise<BucketResult>;
  kvGet(key: string): MaybePromise<KvEntry | undefined>;
  /**
   * Writes `value` if the entry's version is `expected` (undefined: only if absent).
   * Returns the new version, or undefined if the version did not match.
   * `ttlMs` 0 = no expiry.
   */
  kvCas(key: string, value: Uint8Array, expected: bigint | undefined, ttlMs: number): MaybePromise<bigint | undefined>;
  close(): void | Promise<void>;
}

/** Token bucket arithmetic shared by the backends (state: tokens and last refill time). */
export function takeTokens(
  state: { tokens: number; last: number },
  now: number,
  ratePerSec: number,
  burst: number,
  cost: number,
): BucketResult {
  const perMs = ratePerSec / 1000;
  state.tokens = Math.min(burst, state.tokens + (now - state.last) * perMs);
  state.last = now;
  const allowed = state.tokens >= cost;
  if (allowed) state.tokens -= cost;
  const missing = allowed ? 0 : cost - state.tokens;
  return {
    allowed,
    remaining: Math.floor(state.tokens),
    retryAfterMs: perMs > 0 ? Math.ceil(missing / perMs) : allowed ? 0 : Number.MAX_SAFE_INTEGER,
    resetMs: perMs > 0 ? Math.ceil((burst - state.tokens) / perMs) : 0,
  };
}
