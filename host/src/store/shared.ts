/**
 * A Store over a SharedArrayBuffer, so every proxy thread of one process sees the same
 * counters, token buckets and KV entries, exactly. Answers are synchronous (plugins stay on
 * the fast, non-JSPI path).
 *
 * Layout (little-endian, 8-byte aligned; i32/f64 views over one buffer):
 *
 *   header    64 B  magic, geometry, the KV version counter (BigInt64 at byte 32)
 *   counters  G groups × (8 B lock word + S slots × 40 B)
 *             slot: hash hi/lo (i32×2) | kind, – (i32×2) | a f64 | b f64 | expires f64
 *             counter: a = window index, b = value; bucket: a = tokens, b = last refill ms
 *   kv        K groups × (8 B lock word + T slots × (32 B + valueMax))
 *             slot: hash hi/lo (i32×2) | length, – (i32×2) | version f64 | expires f64 | value
 *   targets   N slots × 80 B (slot 0's word is the claim lock): health, ejection, and the
 *             balancer's stats (in flight, requests, failures, latency EWMA)
 *             slot: lock, used | hash hi/lo | activeHealthy, consecutiveFailures | ejectedUntil f64
 *
 * A key is identified by a 64-bit hash of it (two independent 32-bit FNV-1a lanes), not by
 * its text: two keys collide with probability about n²/2⁶⁵. A key hashes to one group; one
 * futex-style lock per group covers lookup, insert and update, which is what makes a take
 * exact across threads. A full group evicts its soonest-expiring entry (memory is fixed).
 */
import { takeTokens, type BucketResult, type KvEntry, type Store } from './store.ts';

const MAGIC = 0x57454952; // "WEIR"
const HEADER = 64;
const SLOT = 40;
const KV_HEAD = 32;
const TARGET_SLOT = 80;
const KIND_COUNTER = 1;
const KIND_BUCKET = 2;
/** Lock waits are ~1 ms each: after this many the holder is presumed dead (a terminated thread). */
const LOCK_MAX_WAITS = 1000;

export interface SharedStoreOptions {
  /** Counter/bucket groups (each holds `slotsPerGroup` entries). */
  readonly groups?: number;
  readonly slotsPerGroup?: number;
  readonly kvGroups?: number;
  readonly kvSlotsPerGroup?: number;
  /** Largest KV value in bytes; larger writes throw. */
  readonly kvValueMax?: number;
  /** Upstream target state slots. */
  readonly targetSlots?: number;
}

interface Geometry {
  groups: number;
  slots: number;
  kvGroups: number;
  kvSlots: number;
  kvValueMax: number;
  targetSlots: number;
  groupBytes: number;
  kvSlotBytes: number;
  kvGroupBytes: number;
  counterAt: number;
  kvAt: number;
  targetAt: number;
  total: number;
}

function geometry(o: Required<SharedStoreOptions>): Geometry {
  const groupBytes = 8 + o.slotsPerGroup * SLOT;
  const kvSlotBytes = KV_HEAD + Math.ceil(o.kvValueMax / 8) * 8;
  const kvGroupBytes = 8 + o.kvSlotsPerGroup * kvSlotBytes;
  const counterAt = HEADER;
  const kvAt = counterAt + o.groups * groupBytes;
  const targetAt = kvAt + o.kvGroups * kvGroupBytes;
  return {
    groups: o.groups, slots: o.slotsPerGroup, kvGroups: o.kvGroups, kvSlots: o.kvSlotsPerGroup, kvValueMax: o.kvValueMax, targetSlots: o.targetSlots,
    groupBytes, kvSlotBytes, kvGroupBytes, counterAt, kvAt, targetAt, total: targetAt + o.targetSlots * TARGET_SLOT,
  };
}

/** Two 32-bit FNV-1a lanes over the UTF-16 units; (0,0) is reserved for "empty". */
export function hash64(key: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    a = Math.imul(a ^ (c & 0xff), 0x01000193);
    a = Math.imul(a ^ (c >>> 8), 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 15;
  }
  b = Math.imul(b ^ (b >>> 13), 0xc2b2ae35);
  b ^= b >>> 16;
  if (a === 0 && b === 0) b = 1;
  return [a | 0, b | 0];
}

/** A futex-style mutex word: 0 free, 1 held, 2 held with waiters. */
export function lockWord(i32: Int32Array, i: number): void {
  if (Atomics.compareExchange(i32, i, 0, 1) === 0) return;
  for (let n = 0; n < LOCK_MAX_WAITS; n++) {
    if (Atomics.exchange(i32, i, 2) === 0) return;
    Atomics.wait(i32, i, 2, 1);
  }
  // A thread terminated inside a (tiny, non-throwing) critical section: take the lock over.
  Atomics.store(i32, i, 2);
}

export function unlockWord(i32: Int32Array, i: number): void {
  if (Atomics.exchange(i32, i, 0) === 2) Atomics.notify(i32, i, 1);
}

/** The buffer and its views, shared by the store and the upstream target table. */
class Shared {
  readonly sab: SharedArrayBuffer;
  readonly g: Geometry;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;
  readonly version: BigInt64Array;

  constructor(sab: SharedArrayBuffer) {
    this.sab = sab;
    this.i32 = new Int32Array(sab);
    if (this.i32[0] !== MAGIC) throw new Error('not a Weir shared-state buffer');
    const h = this.i32;
    this.g = geometry({ groups: h[1]!, slotsPerGroup: h[2]!, kvGroups: h[3]!, kvSlotsPerGroup: h[4]!, kvValueMax: h[5]!, targetSlots: h[6]! });
    this.f64 = new Float64Array(sab);
    this.u8 = new Uint8Array(sab);
    this.version = new BigInt64Array(sab, 32, 1);
  }
}

export function createSharedBuffer(opts: SharedStoreOptions = {}): SharedArrayBuffer {
  const o: Required<SharedStoreOptions> = {
    groups: opts.groups ?? 8192,
    slotsPerGroup: opts.slotsPerGroup ?? 8,
    kvGroups: opts.kvGroups ?? 1024,
    kvSlotsPerGroup: opts.kvSlotsPerGroup ?? 4,
    kvValueMax: opts.kvValueMax ?? 1024,
    targetSlots: opts.targetSlots ?? 4096,
  };
  const g = geometry(o);
  const sab = new SharedArrayBuffer(g.total);
  const h = new Int32Array(sab, 0, 8);
  h.set([MAGIC, o.groups, o.slotsPerGroup, o.kvGroups, o.kvSlotsPerGroup, o.kvValueMax, o.targetSlots]);
  return sab;
}

export class SharedStore implements Store {
  readonly kind = 'shared';
  readonly remote = false;
  readonly sab: SharedArrayBuffer;
  private readonly s: Shared;
  /** Entries pushed out of a full group (memory is fixed; visible in tests and status). */
  evictions = 0;
  /** Injectable clock for tests. */
  now: () => number = Date.now;

  /** Attaches to a buffer from createSharedBuffer (each thread makes its own SharedStore). */
  constructor(sab: SharedArrayBuffer = createSharedBuffer()) {
    this.sab = sab;
    this.s = new Shared(sab);
  }

  /** Byte offset of the slot for `key` in the counter region, with the group locked. */
  private claim(key: string, kind: number, now: number): { lock: number; at: number; fresh: boolean } {
    const { i32, f64, g } = this.s;
    const [hi, lo] = hash64(key);
    const group = (lo >>> 0) % g.groups;
    const base = g.counterAt + group * g.groupBytes;
    const lock = base >> 2;
    lockWord(i32, lock);
    let free = -1;
    let oldest = -1;
    let oldestExp = Infinity;
    for (let s = 0; s < g.slots; s++) {
      const at = base + 8 + s * SLOT;
      const w = at >> 2;
      const h0 = i32[w]!;
      const h1 = i32[w + 1]!;
      const exp = f64[(at + 32) >> 3]!;
      if (h0 === hi && h1 === lo && i32[w + 2] === kind) return { lock, at, fresh: false };
      if ((h0 === 0 && h1 === 0) || exp <= now) {
        if (free < 0) free = at;
      } else if (exp < oldestExp) {
        oldestExp = exp;
        oldest = at;
      }
    }
    let at = free;
    if (at < 0) {
      at = oldest;
      this.evictions++;
    }
    const w = at >> 2;
    i32[w] = hi;
    i32[w + 1] = lo;
    i32[w + 2] = kind;
    return { lock, at, fresh: true };
  }

  counterAdd(key: string, delta: number, windowMs: number): number {
    const { i32, f64 } = this.s;
    const now = this.now();
    const win = Math.floor(now / windowMs);
    const { lock, at, fresh } = this.claim(key, KIND_COUNTER, now);
    const a = (at + 16) >> 3;
    if (fresh || f64[a] !== win) {
      f64[a] = win;
      f64[a + 1] = 0;
      f64[a + 2] = (win + 1) * windowMs;
    }
    const v = f64[a + 1]! + delta;
    f64[a + 1] = v;
    unlockWord(i32, lock);
    return v;
  }

  tokenBucketTake(key: string, ratePerSec: number, burst: number, cost: number): BucketResult {
    const { i32, f64 } = this.s;
    const now = this.now();
    const { lock, at, fresh } = this.claim(key, KIND_BUCKET, now);
    const a = (at + 16) >> 3;
    const state = fresh ? { tokens: burst, last: now } : { tokens: f64[a]!, last: f64[a + 1]! };
    const r = takeTokens(state, now, ratePerSec, burst, cost);
    f64[a] = state.tokens;
    f64[a + 1] = state.last;
    // Like the local store: a bucket that would be full again carries no information.
    f64[a + 2] = now + r.resetMs + 1000;
    unlockWord(i32, lock);
    return r;
  }

  private kvFind(key: string, now: number, create: boolean): { lock: number; at: number; found: boolean } {
    const { i32, f64, g } = this.s;
    const [hi, lo] = hash64(`kv\u0000${key}`);
    const group = (lo >>> 0) % g.kvGroups;
    const base = g.kvAt + group * g.kvGroupBytes;
    const lock = base >> 2;
    lockWord(i32, lock);
    let free = -1;
    let oldest = -1;
    let oldestVersion = Infinity;
    for (let s = 0; s < g.kvSlots; s++) {
      const at = base + 8 + s * g.kvSlotBytes;
      const w = at >> 2;
      const empty = i32[w] === 0 && i32[w + 1] === 0;
      const exp = f64[(at + 24) >> 3]!;
      const live = !empty && (exp === 0 || exp > now);
      if (live && i32[w] === hi && i32[w + 1] === lo) return { lock, at, found: true };
      if (!live) {
        if (free < 0) free = at;
      } else if (f64[(at + 16) >> 3]! < oldestVersion) {
        oldestVersion = f64[(at + 16) >> 3]!;
        oldest = at;
      }
    }
    if (!create) return { lock, at: -1, found: false };
    let at = free;
    if (at < 0) {
      at = oldest;
      this.evictions++;
    }
    i32[at >> 2] = hi;
    i32[(at >> 2) + 1] = lo;
    return { lock, at, found: false };
  }

  kvGet(key: string): KvEntry | undefined {
    const { i32, f64, u8 } = this.s;
    const { lock, at, found } = this.kvFind(key, this.now(), false);
    let out: KvEntry | undefined;
    if (found) {
      const len = i32[(at >> 2) + 2]!;
      out = { value: u8.slice(at + KV_HEAD, at + KV_HEAD + len), version: BigInt(f64[(at + 16) >> 3]!) };
    }
    unlockWord(i32, lock);
    return out;
  }

  kvCas(key: string, value: Uint8Array, expected: bigint | undefined, ttlMs: number): bigint | undefined {
    const { i32, f64, u8, g } = this.s;
    if (value.length > g.kvValueMax) throw new Error(`kv value of ${value.length} bytes is over the shared store's ${g.kvValueMax}-byte limit`);
    const now = this.now();
    // Only a create (expected undefined) may claim a slot.
    const { lock, at, found } = this.kvFind(key, now, expected === undefined);
    try {
      if (found !== (expected !== undefined)) return undefined;
      if (found && BigInt(f64[(at + 16) >> 3]!) !== expected) return undefined;
      const version = Atomics.add(this.s.version, 0, 1n) + 1n;
      i32[(at >> 2) + 2] = value.length;
      f64[(at + 16) >> 3] = Number(version);
      f64[(at + 24) >> 3] = ttlMs > 0 ? now + ttlMs : 0;
      u8.set(value, at + KV_HEAD);
      return version;
    } finally {
      unlockWord(i32, lock);
    }
  }

  close(): void {}
}

/** One upstream target's health as every thread sees it. */
export interface SharedTargetSlot {
  activeHealthy(): boolean;
  setActiveHealthy(v: boolean): void;
  ejectedUntil(): number;
  consecutiveFailures(): number;
  /** A success resets the streak and the ejection. */
  success(): void;
  /** Adds a failure; returns the new streak, and applies `ejectFor(streak)` ms of ejection if > 0. */
  failure(now: number, ejectFor: (streak: number) => number): number;
  /** Requests in flight to the target from every thread. */
  inFlight(): number;
  totalRequests(): number;
  totalFailures(): number;
  lastFailureMs(): number;
  ewmaLatencyMs(): number;
  /** An attempt was sent: one more in flight and one more request. */
  begin(): void;
  /** An attempt ended (answered or failed). */
  end(): void;
  /** A response came after `latencyMs`: the time-decayed EWMA (decaying over `decayMs`) takes it in. */
  sample(latencyMs: number, now: number, decayMs: number): void;
}

/**
 * Upstream target health and passive-ejection state in the shared buffer, one slot per
 * upstream name + target address. Slots are claimed once (when a Target is built) and kept.
 */
export class SharedTargetTable {
  private readonly s: Shared;
  private readonly bySlot = new Map<string, SharedTargetSlot>();

  constructor(sab: SharedArrayBuffer) {
    this.s = new Shared(sab);
  }

  /** The slot for this target, or undefined when the table is full (the caller keeps local state). */
  slot(upstream: string, address: string): SharedTargetSlot | undefined {
    const id = `${upstream}\u0000${address}`;
    const known = this.bySlot.get(id);
    if (known) return known;
    const { i32, f64, g } = this.s;
    const [hi, lo] = hash64(`target\u0000${id}`);
    const claimLock = g.targetAt >> 2;
    let at = -1;
    lockWord(i32, claimLock);
    try {
      // Slot 0 holds the claim lock; probe the rest linearly (slots are never freed).
      const n = g.targetSlots - 1;
      for (let k = 0; k < n; k++) {
        const cand = g.targetAt + TARGET_SLOT * (1 + (((lo >>> 0) + k) % n));
        const w = cand >> 2;
        if (i32[w + 1] === 0) {
          i32[w + 2] = hi;
          i32[w + 3] = lo;
          i32[w + 4] = 1;
          i32[w + 5] = 0;
          f64[(cand + 24) >> 3] = 0;
          i32[w + 8] = 0;
          for (let b = 40; b < TARGET_SLOT; b += 8) f64[(cand + b) >> 3] = 0;
          Atomics.store(i32, w + 1, 1);
          at = cand;
          break;
        }
        if (i32[w + 2] === hi && i32[w + 3] === lo) {
          at = cand;
          break;
        }
      }
    } finally {
      unlockWord(i32, claimLock);
    }
    if (at < 0) return undefined;
    const w = at >> 2;
    const e = (at + 24) >> 3;
    // Balancer stats: word 8 in flight (atomic); f64s requests, failures, last failure, EWMA, last sample (under the slot lock).
    const req = (at + 40) >> 3;
    const fail = req + 1;
    const lastFail = req + 2;
    const ewma = req + 3;
    const lastSample = req + 4;
    const locked = (k: number): number => {
      lockWord(i32, w);
      const v = f64[k]!;
      unlockWord(i32, w);
      return v;
    };
    const slot: SharedTargetSlot = {
      activeHealthy: () => Atomics.load(i32, w + 4) === 1,
      setActiveHealthy: (v) => void Atomics.store(i32, w + 4, v ? 1 : 0),
      ejectedUntil: () => {
        lockWord(i32, w);
        const v = f64[e]!;
        unlockWord(i32, w);
        return v;
      },
      consecutiveFailures: () => Atomics.load(i32, w + 5),
      success: () => {
        // Fast path: nothing to reset (the common case, no lock taken).
        if (Atomics.load(i32, w + 5) === 0 && f64[e] === 0) return;
        lockWord(i32, w);
        i32[w + 5] = 0;
        f64[e] = 0;
        unlockWord(i32, w);
      },
      failure: (now, ejectFor) => {
        lockWord(i32, w);
        const streak = i32[w + 5]! + 1;
        i32[w + 5] = streak;
        const ms = ejectFor(streak);
        if (ms > 0) f64[e] = now + ms;
        f64[fail] = f64[fail]! + 1;
        f64[lastFail] = now;
        unlockWord(i32, w);
        return streak;
      },
      inFlight: () => Atomics.load(i32, w + 8),
      totalRequests: () => locked(req),
      totalFailures: () => locked(fail),
      lastFailureMs: () => locked(lastFail),
      ewmaLatencyMs: () => locked(ewma),
      begin: () => {
        Atomics.add(i32, w + 8, 1);
        lockWord(i32, w);
        f64[req] = f64[req]! + 1;
        unlockWord(i32, w);
      },
      end: () => void Atomics.sub(i32, w + 8, 1),
      sample: (latencyMs, now, decayMs) => {
        lockWord(i32, w);
        const last = f64[lastSample]!;
        f64[ewma] = last === 0 ? latencyMs : f64[ewma]! * Math.exp(-(now - last) / decayMs) + latencyMs * (1 - Math.exp(-(now - last) / decayMs));
        f64[lastSample] = now;
        unlockWord(i32, w);
      },
    };
    this.bySlot.set(id, slot);
    return slot;
  }
}
