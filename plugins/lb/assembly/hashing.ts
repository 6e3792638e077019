// The hashing balancers: `ip_hash` (client address modulo the weights; not consistent),
// `consistent_hash` (a ketama ring) and `maglev` (Google's lookup table). The ring and the
// table are built over every weighted target, healthy or not, so a failing target only moves
// its own keys: they go to the next healthy point (ring) or entry (table).
import { Request, Target } from "@weir/sdk-assemblyscript";

/**
 * Points on the ring per unit of weight. Ketama's own 160 leaves a target's share about 8 %
 * off its weight (1/sqrt(points)); 1000 keeps it near 3 %.
 */
const RING_POINTS: i32 = 1000;
/** Ring points keep the target's position in their low bits (so one sort orders both). */
const OWNER_BITS: u64 = 16;
const OWNER_MASK: u64 = (<u64>1 << OWNER_BITS) - 1;

/** FNV-1a 64 over UTF-16 code units, then murmur3's finalizer (FNV alone clusters similar keys). */
export function hash64(s: string, seed: u64 = 0): u64 {
  let h: u64 = 0xcbf29ce484222325 ^ seed;
  for (let i = 0; i < s.length; i++) {
    h ^= <u64>s.charCodeAt(i);
    h *= 0x100000001b3;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccd;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53;
  h ^= h >> 33;
  return h;
}

/** Where a request's hash key comes from (`hash-key`). */
export class HashKey {
  constructor(public kind: string, public name: string) {}
}

/** `header:X` | `cookie:X` | `query:X` | `path` | `client-ip`; null if none of those. */
export function parseHashKey(spec: string): HashKey | null {
  if (spec == "path" || spec == "client-ip") return new HashKey(spec, "");
  const colon = spec.indexOf(":");
  if (colon <= 0 || colon == spec.length - 1) return null;
  const kind = spec.substring(0, colon);
  const name = spec.substring(colon + 1);
  if (kind == "header") return new HashKey(kind, name.toLowerCase());
  if (kind == "cookie" || kind == "query") return new HashKey(kind, name);
  return null;
}

/** Value of `name` in a `a=1; b=2` (sep "; ") or `a=1&b=2` (sep "&") list; null if absent. */
function listValue(list: string, sep: string, name: string): string | null {
  const parts = list.split(sep);
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i].trim();
    const eq = p.indexOf("=");
    if (eq > 0 && p.substring(0, eq) == name) return p.substring(eq + 1);
  }
  return null;
}

/** The request's key; a request without one (no such header, cookie or parameter) is keyed by its client address. */
export function requestKey(request: Request, key: HashKey): string {
  let v: string | null = null;
  if (key.kind == "path") v = request.path;
  else if (key.kind == "header") v = request.header(key.name);
  else if (key.kind == "cookie") {
    const c = request.header("cookie");
    if (c !== null) v = listValue(c, ";", key.name);
  } else if (key.kind == "query") {
    let q = request.query;
    if (q.startsWith("?")) q = q.substring(1);
    v = listValue(q, "&", key.name);
  }
  return v !== null && v.length > 0 ? v : request.clientAddress;
}

/** Addresses and weights in order: the ring or table is rebuilt when this changes. */
function signature(targets: Target[]): string {
  let s = "";
  for (let i = 0; i < targets.length; i++) s += targets[i].address + "*" + targets[i].weight.toString() + " ";
  return s;
}

/** `ip_hash`: the client address picks a target of `pool` in proportion to weight. */
export function ipHash(request: Request, pool: Target[]): Target | null {
  if (pool.length == 0) return null;
  let total: u64 = 0;
  for (let i = 0; i < pool.length; i++) total += <u64>max<u32>(pool[i].weight, 1);
  let r = hash64(request.clientAddress) % total;
  for (let i = 0; i < pool.length; i++) {
    const w = <u64>max<u32>(pool[i].weight, 1);
    if (r < w) return pool[i];
    r -= w;
  }
  return pool[pool.length - 1];
}

class Ring {
  constructor(public sig: string, public points: u64[]) {}
}

/** Ketama: RING_POINTS × weight points per target; a key goes to the first point at or after its hash. */
export class Ketama {
  rings: Map<string, Ring> = new Map();

  ring(upstream: string, targets: Target[]): Ring {
    const sig = signature(targets);
    if (this.rings.has(upstream)) {
      const r = this.rings.get(upstream);
      if (r.sig == sig) return r;
    }
    const points = new Array<u64>(0);
    for (let i = 0; i < targets.length; i++) {
      const n = RING_POINTS * <i32>targets[i].weight;
      for (let p = 0; p < n; p++) points.push((hash64(targets[i].address + "-" + p.toString()) & ~OWNER_MASK) | <u64>i);
    }
    points.sort((a: u64, b: u64): i32 => (a < b ? -1 : a > b ? 1 : 0));
    const r = new Ring(sig, points);
    this.rings.set(upstream, r);
    return r;
  }

  pick(upstream: string, targets: Target[], key: string): Target | null {
    const points = this.ring(upstream, targets).points;
    const n = points.length;
    if (n == 0) return null;
    const h = hash64(key) & ~OWNER_MASK;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((points[mid] & ~OWNER_MASK) < h) lo = mid + 1;
      else hi = mid;
    }
    // Clockwise to the first healthy target; none healthy: the key's own target (fail open).
    for (let k = 0; k < n; k++) {
      const t = targets[<i32>(points[(lo + k) % n] & OWNER_MASK)];
      if (t.healthy) return t;
    }
    return targets[<i32>(points[lo % n] & OWNER_MASK)];
  }
}

class Table {
  constructor(public sig: string, public entries: Int32Array) {}
}

function isPrime(n: u32): bool {
  if (n < 2) return false;
  for (let d: u32 = 2; d * d <= n; d++) if (n % d == 0) return false;
  return true;
}

function gcd(a: u32, b: u32): u32 {
  while (b != 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** Maglev (Eisenbud et al., NSDI 2016): each target fills the table along its own permutation. */
export class Maglev {
  tables: Map<string, Table> = new Map();

  table(upstream: string, targets: Target[]): Table {
    const sig = signature(targets);
    if (this.tables.has(upstream)) {
      const t = this.tables.get(upstream);
      if (t.sig == sig) return t;
    }
    let weighted = 0;
    let g: u32 = 0;
    for (let i = 0; i < targets.length; i++) {
      if (targets[i].weight == 0) continue;
      weighted++;
      g = gcd(g, targets[i].weight);
    }
    // A key's entry is its hash modulo the size, so the size changes only in big steps: a
    // prime of at least 100 entries per target (5003 up to 50 targets, 65537 up to 655).
    let m: u32 = 100 * weighted <= 5003 ? 5003 : 100 * weighted <= 65537 ? 65537 : 100 * weighted;
    while (!isPrime(m)) m++;
    const entries = new Int32Array(m).fill(-1);
    if (weighted > 0) {
      const offset = new Uint64Array(targets.length);
      const skip = new Uint64Array(targets.length);
      const next = new Uint64Array(targets.length);
      for (let i = 0; i < targets.length; i++) {
        offset[i] = hash64(targets[i].address, 1) % <u64>m;
        skip[i] = (hash64(targets[i].address, 2) % <u64>(m - 1)) + 1;
      }
      // Weighted rounds: a target takes weight/gcd entries per round, each its next free preference.
      let filled: u32 = 0;
      while (filled < m) {
        for (let i = 0; i < targets.length && filled < m; i++) {
          const turns = targets[i].weight / max<u32>(g, 1);
          for (let k: u32 = 0; k < turns && filled < m; k++) {
            let c = <i32>((offset[i] + next[i] * skip[i]) % <u64>m);
            while (entries[c] >= 0) {
              next[i]++;
              c = <i32>((offset[i] + next[i] * skip[i]) % <u64>m);
            }
            entries[c] = i;
            next[i]++;
            filled++;
          }
        }
      }
    }
    const t = new Table(sig, entries);
    this.tables.set(upstream, t);
    return t;
  }

  pick(upstream: string, targets: Target[], key: string): Target | null {
    const entries = this.table(upstream, targets).entries;
    const m = entries.length;
    const start = <i32>(hash64(key) % <u64>m);
    if (entries[start] < 0) return null;
    // The next entry of a healthy target; none healthy: the key's own target (fail open).
    for (let k = 0; k < m; k++) {
      const t = targets[entries[(start + k) % m]];
      if (t.healthy) return t;
    }
    return targets[entries[start]];
  }
}
