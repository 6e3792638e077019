/**
 * Reads the top-level `cache {}` block and a route's `policies { cache {} }` (both already
 * validated against the schema) into plain settings for the store and the cache phase.
 */
import { BlockList, isIP } from 'node:net';
import type { ConfigNode } from '../config/types.ts';
import { parseSize } from '../config/values.ts';
import { arg, child, stringArg } from '../filters/settings.ts';

export interface CacheSettings {
  readonly enabled: boolean;
  readonly backend: 'memory' | 'disk' | 'hybrid';
  /** Directory of the disk backends, and how many subdirectories spread the files. */
  readonly diskPath: string | undefined;
  readonly diskShards: number;
  /** Bytes the store may hold; least recently used entries are evicted past it. */
  readonly maxBytes: number;
  /** How long a miss waits for another request filling the same key, ms. */
  readonly lockTimeoutMs: number;
  /** Response header carrying HIT / MISS / STALE / BYPASS. */
  readonly statusHeader: string;
  /** Who may send PURGE: addresses/networks, or anyone presenting the token. */
  readonly purgeAllow: BlockList;
  readonly purgeToken: string | undefined;
}

export interface RouteCacheSettings {
  /** Freshness given to responses without explicit freshness (max-age, s-maxage, Expires), seconds. */
  readonly defaultTtlSecs: number | undefined;
  /** Responses larger than this are passed through, not stored. */
  readonly maxObjectBytes: number;
  /** Store `Cache-Control: private` responses (the cache then acts as a private cache). */
  readonly cachePrivate: boolean;
  /** Stale entries may answer when the origin fails for this long past expiry, seconds (besides the response's own stale-if-error). */
  readonly staleIfErrorSecs: number;
  /** Only these statuses are stored (undefined: any status RFC 9111 allows). */
  readonly statuses: ReadonlySet<number> | undefined;
  /** Request headers that are always part of the key (lowercased). */
  readonly keyHeaders: readonly string[];
  /** Query parameters left out of the key. */
  readonly ignoreQuery: ReadonlySet<string>;
  /** stale-while-revalidate window given to responses without their own, seconds. */
  readonly staleWhileRevalidateSecs: number | undefined;
  /** Methods the cache answers and stores (GET, HEAD). */
  readonly methods: ReadonlySet<string>;
  /** Lowercased extensions (no dot) and path globs that bypass the cache. */
  readonly excludeExtensions: ReadonlySet<string>;
  readonly excludePaths: readonly string[];
}

export const CACHE_DEFAULTS = {
  maxBytes: 100 * 1024 * 1024,
  lockTimeoutMs: 10_000,
  statusHeader: 'x-cache',
  maxObjectBytes: 10 * 1024 * 1024,
  diskShards: 16,
  purgeAllow: ['127.0.0.1', '::1'],
} as const;

function bool(node: ConfigNode | undefined, name: string): boolean | undefined {
  const v = node ? arg(node, name) : undefined;
  return typeof v === 'boolean' ? v : undefined;
}

function num(node: ConfigNode | undefined, name: string): number | undefined {
  const v = node ? arg(node, name) : undefined;
  return typeof v === 'number' ? v : undefined;
}

function size(node: ConfigNode | undefined, name: string): number | undefined {
  return node ? parseSize(arg(node, name)) : undefined;
}

function strings(node: ConfigNode | undefined, name: string): string[] {
  if (!node) return [];
  return node.children.filter((c) => c.name === name).flatMap((c) => c.args.map(String));
}

/** Adds "10.0.0.0/8", "::1" or "192.168.1.7" to a block list. */
function addAddress(list: BlockList, spec: string): void {
  const [addr, bits] = spec.split('/');
  const family = isIP(addr!) === 6 ? 'ipv6' : 'ipv4';
  if (bits === undefined) list.addAddress(addr!, family);
  else list.addSubnet(addr!, Number(bits), family);
}

/** Settings from the top-level block (absent: defaults, enabled). */
export function cacheSettings(node: ConfigNode | undefined): CacheSettings {
  const maxSize = size(node, 'max-size') ?? CACHE_DEFAULTS.maxBytes;
  const eviction = size(node, 'eviction-limit');
  const lock = num(node, 'lock-timeout');
  const purge = node ? child(node, 'purge') : undefined;
  const allow = new BlockList();
  const written = strings(purge, 'allow');
  for (const a of written.length ? written : CACHE_DEFAULTS.purgeAllow) addAddress(allow, a);
  return {
    enabled: bool(node, 'enabled') ?? true,
    backend: ((node ? stringArg(node, 'backend') : undefined) ?? 'memory') as CacheSettings['backend'],
    diskPath: node ? stringArg(node, 'disk-path') : undefined,
    diskShards: num(node, 'disk-shards') ?? CACHE_DEFAULTS.diskShards,
    maxBytes: eviction !== undefined ? Math.min(eviction, maxSize) : maxSize,
    lockTimeoutMs: lock !== undefined ? lock * 1000 : CACHE_DEFAULTS.lockTimeoutMs,
    statusHeader: (node ? stringArg(node, 'status-header') : undefined)?.toLowerCase() ?? CACHE_DEFAULTS.statusHeader,
    purgeAllow: allow,
    purgeToken: purge ? stringArg(purge, 'token') : undefined,
  };
}

/** A route's settings, or undefined when the route does not cache. */
export function routeCacheSettings(node: ConfigNode | undefined): RouteCacheSettings | undefined {
  if (!node || bool(node, 'enabled') === false) return undefined;
  const statuses = node.children.filter((c) => c.name === 'cacheable-status-codes').flatMap((c) => c.args.map(Number));
  return {
    defaultTtlSecs: num(node, 'default-ttl-secs'),
    maxObjectBytes: size(node, 'max-size-bytes') ?? CACHE_DEFAULTS.maxObjectBytes,
    cachePrivate: bool(node, 'cache-private') ?? false,
    staleIfErrorSecs: num(node, 'stale-if-error-secs') ?? 0,
    statuses: statuses.length ? new Set(statuses) : undefined,
    keyHeaders: strings(node, 'vary-headers').map((h) => h.toLowerCase()),
    ignoreQuery: new Set(strings(node, 'ignore-query-params')),
    staleWhileRevalidateSecs: num(node, 'stale-while-revalidate-secs'),
    methods: new Set(strings(node, 'cacheable-methods').length ? strings(node, 'cacheable-methods') : ['GET', 'HEAD']),
    excludeExtensions: new Set(strings(node, 'exclude-extensions').map((e) => e.replace(/^\./, '').toLowerCase())),
    excludePaths: strings(node, 'exclude-paths'),
  };
}
