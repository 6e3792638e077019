/**
 * The cache store: complete responses in an LRU bounded by bytes (lru-cache), indexed by
 * primary key (the URL key) → variants (Vary), and by tag (Surrogate-Key / Cache-Tag) for
 * purges. Fills in progress are tracked here too, so concurrent misses for one key wait for
 * the first instead of all going to the origin (request coalescing).
 *
 * Backends: `memory` keeps bodies in the LRU; `disk` keeps only the heads in memory and each
 * body in one file (disk.ts), the LRU then evicting files; `hybrid` is `disk` plus a smaller
 * memory LRU of hot bodies in front of it.
 */
import { LRUCache } from 'lru-cache';
import type CachePolicy from 'http-cache-semantics';
import { DiskFiles } from './disk.ts';
import type { HeaderMap } from '../pipeline/phases.ts';
import type { CacheMetrics } from './metrics.ts';

export interface Entry {
  readonly primary: string;
  readonly key: string;
  readonly policy: CachePolicy;
  /** The response head as stored (what the policy was built from). */
  readonly headers: HeaderMap;
  readonly status: number;
  /** The body; empty for an entry whose body is on disk (see `file`). */
  readonly body: Buffer;
  /** Where the body is, for the disk backends. */
  readonly file?: string;
  readonly tags: readonly string[];
  /** Bytes counted against the store: body plus a rough header size. */
  readonly size: number;
}

/** A fill in progress: waiters resolve when it is published or abandoned. */
interface Fill {
  readonly done: Promise<void>;
  readonly release: () => void;
}

export interface DiskOptions {
  readonly dir: string;
  readonly shards: number;
  /** Bytes of hot bodies kept in memory too (hybrid); 0 = disk only. */
  readonly hotBytes: number;
}

export class CacheStore {
  readonly maxBytes: number;
  /** Identity of the storage layout, to keep a store across reloads only when it is unchanged. */
  readonly layout: string;
  private readonly lru: LRUCache<string, Entry>;
  private readonly disk: DiskFiles | undefined;
  private readonly hot: LRUCache<string, Buffer> | undefined;
  /** Primary key → request headers its stored responses vary on (from the last stored Vary). */
  private readonly varyOn = new Map<string, readonly string[]>();
  private readonly variants = new Map<string, Set<string>>();
  private readonly byTag = new Map<string, Set<string>>();
  private readonly fills = new Map<string, Fill>();
  private readonly metrics: CacheMetrics;

  constructor(maxBytes: number, metrics: CacheMetrics, disk?: DiskOptions) {
    this.maxBytes = maxBytes;
    this.metrics = metrics;
    this.layout = disk ? `${maxBytes}:${disk.dir}:${disk.shards}:${disk.hotBytes}` : `${maxBytes}`;
    this.lru = new LRUCache<string, Entry>({
      maxSize: maxBytes,
      sizeCalculation: (e) => Math.max(1, e.size),
      dispose: (e, key, reason) => {
        this.unindex(e, key);
        // A replaced entry's file was already overwritten by the new one's rename.
        if (e.file && reason !== 'set') this.disk?.remove(e.file);
        this.hot?.delete(key);
        if (reason === 'evict') metrics.count('evictions');
        this.gauge();
      },
    });
    if (disk) {
      this.disk = new DiskFiles(disk.dir, disk.shards);
      if (disk.hotBytes > 0) this.hot = new LRUCache<string, Buffer>({ maxSize: disk.hotBytes, sizeCalculation: (b) => Math.max(1, b.length) });
      // Index rebuilt from the files: the heads come back, the bodies stay on disk.
      for (const { entry, vary } of this.disk.load()) this.index(entry, vary);
    }
  }

  /** A stored entry with its body (read from disk for the disk backends). */
  read(e: Entry): Entry | Promise<Entry | undefined> {
    if (!e.file || !this.disk) return e;
    const hot = this.hot?.get(e.key);
    if (hot) return { ...e, body: hot };
    return this.disk.readBody(e.file).then(
      (body) => {
        this.hot?.set(e.key, body);
        return { ...e, body };
      },
      () => {
        // The file went away (removed by hand, disk full…): forget the entry.
        if (this.lru.peek(e.key) === e) this.lru.delete(e.key);
        return undefined;
      },
    );
  }

  /** Header names the stored responses under `primary` vary on. */
  varyNames(primary: string): readonly string[] {
    return this.varyOn.get(primary) ?? [];
  }

  get(key: string): Entry | undefined {
    return this.lru.get(key);
  }

  /**
   * Publishes a complete entry (replacing any under its key). With a disk backend the entry
   * is published once its file is renamed into place. Resolves false if it cannot fit.
   */
  set(entry: Entry, vary: readonly string[]): boolean | Promise<boolean> {
    if (entry.size > this.maxBytes) return false;
    if (!this.disk) return this.index(entry, vary);
    const disk = this.disk;
    return disk.write(entry, vary).then(
      (file) => {
        this.hot?.set(entry.key, entry.body);
        return this.index({ ...entry, body: EMPTY, file }, vary);
      },
      () => false,
    );
  }

  private index(entry: Entry, vary: readonly string[] = this.varyOn.get(entry.primary) ?? []): boolean {
    this.varyOn.set(entry.primary, vary);
    this.lru.set(entry.key, entry);
    if (!this.lru.has(entry.key)) return false;
    let v = this.variants.get(entry.primary);
    if (!v) this.variants.set(entry.primary, (v = new Set()));
    v.add(entry.key);
    for (const t of entry.tags) {
      let s = this.byTag.get(t);
      if (!s) this.byTag.set(t, (s = new Set()));
      s.add(entry.key);
    }
    this.gauge();
    return true;
  }

  /** Removes every variant stored under a primary key; returns how many. */
  deletePrimary(primary: string): number {
    const keys = [...(this.variants.get(primary) ?? [])];
    for (const k of keys) this.lru.delete(k);
    this.varyOn.delete(primary);
    return keys.length;
  }

  /** Removes every entry whose primary key starts with `prefix`. */
  deletePrefix(prefix: string): number {
    let n = 0;
    for (const p of [...this.variants.keys()]) if (p.startsWith(prefix)) n += this.deletePrimary(p);
    return n;
  }

  /** Removes every entry tagged `tag` (Surrogate-Key / Cache-Tag). */
  deleteTag(tag: string): number {
    const keys = [...(this.byTag.get(tag) ?? [])];
    for (const k of keys) this.lru.delete(k);
    return keys.length;
  }

  clear(): number {
    const n = this.lru.size;
    this.lru.clear();
    return n;
  }

  /** If nobody is filling `key`, makes the caller the filler and returns its release; else undefined. */
  claim(key: string): (() => void) | undefined {
    if (this.fills.has(key)) return undefined;
    let release!: () => void;
    const done = new Promise<void>((r) => (release = r));
    const fill: Fill = {
      done,
      release: () => {
        if (this.fills.get(key) === fill) this.fills.delete(key);
        release();
      },
    };
    this.fills.set(key, fill);
    return fill.release;
  }

  /** Waits for the fill of `key` (if any) to end, at most `ms`. */
  async waitFill(key: string, ms: number): Promise<void> {
    const f = this.fills.get(key);
    if (!f) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([f.done, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  filling(key: string): boolean {
    return this.fills.has(key);
  }

  stats(): { entries: number; bytes: number; maxBytes: number; fillsInProgress: number } {
    return { entries: this.lru.size, bytes: this.lru.calculatedSize, maxBytes: this.maxBytes, fillsInProgress: this.fills.size };
  }

  private unindex(e: Entry, key: string): void {
    const v = this.variants.get(e.primary);
    if (v) {
      v.delete(key);
      if (v.size === 0) {
        this.variants.delete(e.primary);
        this.varyOn.delete(e.primary);
      }
    }
    for (const t of e.tags) {
      const s = this.byTag.get(t);
      if (s) {
        s.delete(key);
        if (s.size === 0) this.byTag.delete(t);
      }
    }
  }

  private gauge(): void {
    this.metrics.bytes.set(this.lru.calculatedSize);
    this.metrics.entries.set(this.lru.size);
  }
}

/** Rough byte size of a header map, for the store's accounting. */
const EMPTY = Buffer.alloc(0);

export function headerBytes(h: HeaderMap): number {
  let n = 0;
  for (const k in h) {
    const v = h[k];
    n += k.length + 4 + (Array.isArray(v) ? v.join(', ').length : (v?.length ?? 0));
  }
  return n;
}
