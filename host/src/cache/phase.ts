/**
 * The cache as a host built-in Phase, last in a route's chain (so it runs after the route's
 * own request filters and first on the response):
 *
 *   on-request-headers: PURGE → purge; GET/HEAD → look up; fresh → local reply (HIT);
 *     stale → conditional request to the origin; another request filling the key → wait
 *     (lock-timeout) and look again; else claim the fill.
 *   on-response-headers: 304 to our revalidation → refreshed entry (HIT); 5xx with a usable
 *     stale entry → STALE; storable → record the body (MISS); unsafe method → invalidate.
 *   on-response-body: copy each chunk as it streams to the client; publish at the end.
 *
 * Freshness, storability and revalidation follow RFC 9111 through http-cache-semantics.
 */
import CachePolicy from 'http-cache-semantics';
import { isIP } from 'node:net';
import { matchesGlob } from 'node:path/posix';
import type { BodyChunk, HeaderMap, HeadersResult, LocalReply, Phase, RequestContext, RequestHead } from '../pipeline/phases.ts';
import type { WeirError } from '../errors.ts';
import { errorBody, errorStatus } from '../error-body.ts';
import { multipart, notModified, notModifiedHeaders, selectRange } from '../representation/select.ts';
import type { CacheSettings, RouteCacheSettings } from './settings.ts';
import { headerBytes, type Entry, type CacheStore } from './store.ts';
import { isPromise } from '../pipeline/chain.ts';
import type { CacheMetrics } from './metrics.ts';

/** RFC 9110 §9.2.1: any other method (PATCH, M-SEARCH, …) is unsafe and invalidates (RFC 9111 §4.4). */
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE']);
/** Request fields a background revalidation does not forward: hop-by-hop, and the client's own conditions and range. */
const HOP_OR_CONDITIONAL = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'transfer-encoding', 'upgrade', 'content-length', 'expect', 'range', 'if-range', 'if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since']);
/** Fields a 304 does not replace (RFC 9111 §3.2: they describe the stored body, or select it). */
const KEPT_ON_304 = new Set(['content-length', 'content-encoding', 'transfer-encoding', 'content-range', 'content-md5', 'etag']);
const STREAM = Object.freeze({ mode: 'stream' as const });
const NO_BODY = Object.freeze({ mode: 'none' as const });

type Status = 'HIT' | 'MISS' | 'STALE' | 'BYPASS';

interface State {
  readonly primary: string;
  key: string;
  /** A stored entry that needs revalidation (or may serve stale on error). */
  stale: Entry | undefined;
  /** Release of the fill lock this request holds. */
  release: (() => void) | undefined;
  /** The response is being recorded. */
  record: { policy: CachePolicy; headers: HeaderMap; status: number; vary: string[]; tags: string[]; chunks: Buffer[]; size: number; started: number } | undefined;
  /** The reply came from the cache (its own local reply passes through on-response-headers). */
  served: boolean;
  invalidate: boolean;
  /** Not looked up nor stored (another method, cacheable-methods, exclude-*): marked BYPASS. */
  bypass: boolean;
  /** The client's own conditional and range headers, before the cache replaced them towards the origin. */
  client: HeaderMap | undefined;
}

function first(h: HeaderMap, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** The primary key: scheme, host, normalised path and query (some parameters left out), key headers. */
export function primaryKey(req: RequestHead, rs: RouteCacheSettings, path = req.path, query = req.query): string {
  let q = query;
  if (rs.ignoreQuery.size && q !== '') {
    q = q.split('&').filter((p) => {
      const name = p.split('=')[0]!;
      let decoded = name;
      try {
        decoded = decodeURIComponent(name.replace(/\+/g, ' '));
      } catch {
        // a malformed escape stays as written
      }
      return !rs.ignoreQuery.has(decoded);
    }).join('&');
  }
  let k = `${req.scheme}://${req.authority.toLowerCase()}${path}${q === '' ? '' : `?${q}`}`;
  for (const h of rs.keyHeaders) k += `\u0000${h}:${first(req.headers, h) ?? ''}`;
  return k;
}

/** The secondary key: the primary key plus the request's values of the Vary headers. */
function variantKey(primary: string, names: readonly string[], h: HeaderMap): string {
  if (names.length === 0) return primary;
  let k = primary + '\u0001';
  for (const n of names) k += `\u0000${n}:${(first(h, n) ?? '').trim().replace(/\s*,\s*/g, ',')}`;
  return k;
}

function varyNames(h: HeaderMap): string[] {
  const v = first(h, 'vary');
  if (!v) return [];
  return v.split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== '').sort();
}

function tagsOf(h: HeaderMap): string[] {
  const tags: string[] = [];
  const sk = first(h, 'surrogate-key');
  if (sk) tags.push(...sk.split(/\s+/).filter(Boolean));
  const ct = first(h, 'cache-tag');
  if (ct) tags.push(...ct.split(',').map((s) => s.trim()).filter(Boolean));
  return tags;
}

function ccDirective(h: HeaderMap, name: string): string | true | undefined {
  const cc = first(h, 'cache-control');
  if (!cc) return undefined;
  for (const part of cc.split(',')) {
    const [k, v] = part.split('=');
    if (k!.trim().toLowerCase() === name) return v === undefined ? true : v.trim().replace(/^"|"$/g, '');
  }
  return undefined;
}

/** The request as http-cache-semantics sees it: the URL is in our key, HEAD is answered from GET. */
function policyRequest(ctx: RequestContext): CachePolicy.Request {
  return { url: '', method: ctx.request.method === 'HEAD' ? 'GET' : ctx.request.method, headers: { ...ctx.request.headers, host: ctx.request.authority } };
}

function errorReply(code: 'WEIR_ERR_PURGE_FORBIDDEN' | 'WEIR_ERR_CACHE_ONLY_IF_CACHED', ctx: RequestContext): LocalReply {
  return { status: errorStatus(code), headers: { 'content-type': 'application/json' }, body: errorBody(code, ctx.id) };
}

/** A response fetched outside any client exchange (a background revalidation). */
export interface OriginResponse {
  readonly status: number;
  readonly headers: HeaderMap;
  readonly body: Buffer;
}

/** Sends one request to a named upstream with no client attached; rejects when none can be sent. */
export type BackgroundOrigin = (upstream: string, head: { method: string; path: string; headers: HeaderMap }) => Promise<OriginResponse>;

export interface CachePhaseEnv {
  readonly store: CacheStore;
  readonly settings: CacheSettings;
  readonly metrics: CacheMetrics;
  /** The route's upstream and how to reach it in the background (stale-while-revalidate). */
  readonly upstream?: string;
  readonly origin?: BackgroundOrigin;
}

/** Builds the cache phase of one route. */
export function cachePhase(routeName: string, rs: RouteCacheSettings, env: CachePhaseEnv): Phase {
  const { store, settings, metrics } = env;
  const header = settings.statusHeader;

  const state = (ctx: RequestContext): State | undefined => ctx.filterState.get(phase) as State | undefined;

  /** `exclude-extensions` / `exclude-paths`. */
  const excluded = (path: string): boolean => {
    if (rs.excludeExtensions.size) {
      const dot = path.lastIndexOf('.');
      if (dot > path.lastIndexOf('/') && rs.excludeExtensions.has(path.slice(dot + 1).toLowerCase())) return true;
    }
    return rs.excludePaths.some((g) => matchesGlob(path, g));
  };

  /** A reply from a complete entry: 304 / 206 / 416 / the whole body, with Age and the status header. */
  const answer = (ctx: RequestContext, e: Entry, status: Status): LocalReply => {
    const h = e.policy.responseHeaders() as HeaderMap;
    delete h['content-length'];
    // RFC 9110 §6.6.1: Date is when the origin made the response; the library puts "now" there.
    const date = e.headers['date'];
    if (date !== undefined) h['date'] = date;
    else delete h['date'];
    h[header] = status;
    const st = state(ctx);
    const req = st?.client ?? ctx.request.headers;
    if (st) st.served = true;
    metrics.count(status === 'STALE' ? 'stale' : 'hits');
    if (e.status === 200) {
      h['accept-ranges'] ??= 'bytes';
      if (notModified(req, h)) return { status: 304, headers: notModifiedHeaders({ ...h, [header]: status }) as Record<string, string> };
      if (ctx.request.method === 'GET') {
        const r = selectRange(req, h, e.body.length);
        if (r.kind === 'partial') {
          h['content-range'] = `bytes ${r.start}-${r.end}/${e.body.length}`;
          return { status: 206, headers: h as Record<string, string>, body: e.body.subarray(r.start, r.end + 1) };
        }
        if (r.kind === 'unsatisfiable') return { status: 416, headers: { 'content-range': `bytes */${e.body.length}`, [header]: status }, body: '' };
        if (r.kind === 'multi') {
          const mp = multipart(r.ranges, e.body.length, first(h, 'content-type'));
          const chunks: Buffer[] = [];
          for (const p of mp.parts) chunks.push(p.head, e.body.subarray(p.start, p.end + 1));
          chunks.push(mp.tail);
          h['content-type'] = mp.contentType;
          return { status: 206, headers: h as Record<string, string>, body: Buffer.concat(chunks, mp.length) };
        }
      }
    }
    return { status: e.status, headers: h as Record<string, string>, body: e.body };
  };

  const staleUsable = (e: Entry): boolean => {
    const h = e.policy.responseHeaders() as HeaderMap;
    // RFC 9111 §5.2.2: these forbid serving stale (s-maxage implies proxy-revalidate in a shared cache).
    for (const d of ['must-revalidate', 'proxy-revalidate', 'no-cache', ...(rs.cachePrivate ? [] : ['s-maxage'])]) if (ccDirective(h, d)) return false;
    const own = Number(ccDirective(h, 'stale-if-error'));
    const window = Math.max(Number.isFinite(own) ? own : 0, rs.staleIfErrorSecs);
    return e.policy.maxAge() + window > e.policy.age();
  };

  const purge = (ctx: RequestContext): LocalReply => {
    let addr = ctx.client.address;
    if (addr.startsWith('::ffff:') && isIP(addr.slice(7)) === 4) addr = addr.slice(7);
    const fam = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
    const h = ctx.request.headers;
    const auth = first(h, 'authorization');
    const token = first(h, 'x-purge-token') ?? (auth?.startsWith('Bearer ') ? auth.slice(7) : undefined);
    const trusted = (settings.purgeToken !== undefined && token === settings.purgeToken) || (isIP(addr) !== 0 && settings.purgeAllow.check(addr, fam));
    if (!trusted) return errorReply('WEIR_ERR_PURGE_FORBIDDEN', ctx);
    let n = 0;
    const tags = tagsOf(h);
    if (tags.length) for (const t of tags) n += store.deleteTag(t);
    else if (ctx.request.path.endsWith('*')) n = store.deletePrefix(primaryKey(ctx.request, rs, ctx.request.path.slice(0, -1), '').replace(/\?$/, ''));
    else n = store.deletePrimary(primaryKey(ctx.request, rs));
    metrics.count('purged', n);
    return { status: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ purged: n }) };
  };

  /** Looks the request up; undefined = go to the origin (state set up for it). */
  const lookup = (ctx: RequestContext, st: State, waited: boolean): HeadersResult | Promise<HeadersResult> => {
    const req = ctx.request;
    st.key = variantKey(st.primary, store.varyNames(st.primary), req.headers);
    const found = store.get(st.key);
    if (!found) return decide(ctx, st, undefined, waited);
    const full = store.read(found);
    return isPromise<Entry | undefined>(full) ? full.then((e) => decide(ctx, st, e, waited)) : decide(ctx, st, full, waited);
  };

  /** Given the stored entry (with its body) or none: answer, or set the request up for the origin. */
  const decide = (ctx: RequestContext, st: State, e: Entry | undefined, waited: boolean): HeadersResult | Promise<HeadersResult> => {
    const req = ctx.request;
    const preq = policyRequest(ctx);
    if (e) {
      const ev = evaluate(e.policy, preq);
      if (ev.response && !ev.revalidation) return answer(ctx, e, 'HIT');
      // stale-while-revalidate: the stale entry answers now; one revalidation runs in the background.
      if (ev.response && ev.revalidation && !ev.revalidation.synchronous && env.origin && env.upstream !== undefined) {
        const release = store.claim(st.key);
        if (release) revalidateInBackground(ctx, st, e, release);
        return answer(ctx, e, 'STALE');
      }
      st.stale = e;
    }
    if (ccDirective(req.headers, 'only-if-cached')) {
      st.served = true;
      return errorReply('WEIR_ERR_CACHE_ONLY_IF_CACHED', ctx);
    }
    const release = store.claim(st.key);
    if (!release) {
      if (!waited) return store.waitFill(st.key, settings.lockTimeoutMs).then(() => lookup(ctx, st, true));
    } else st.release = release;
    if (st.stale || st.release) {
      // We fill or refresh the entry: ask for the whole representation (the client's own
      // conditions and range are answered from the entry), conditional on our copy if stale.
      st.client = {};
      for (const name of ['range', 'if-range', 'if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since']) {
        st.client[name] = req.headers[name];
        delete req.headers[name];
      }
      if (st.stale) {
        const rh = st.stale.policy.revalidationHeaders({ ...preq, headers: { ...req.headers, host: req.authority } });
        for (const name of ['if-none-match', 'if-modified-since'] as const) if (rh[name] !== undefined) req.headers[name] = rh[name];
      }
    }
    metrics.count('misses');
    return undefined;
  };

  const phase: Phase = {
    name: `cache:${routeName}`,
    kind: 'builtin:cache',
    failureMode: 'open',
    requestBody: NO_BODY,
    responseBody: STREAM,
    keepsResponseLength: true,

    onRequestHeaders(ctx) {
      const m = ctx.request.method;
      if (m === 'PURGE') {
        ctx.filterState.set(phase, { primary: '', key: '', stale: undefined, release: undefined, record: undefined, served: true, invalidate: false, bypass: true, client: undefined } satisfies State);
        return purge(ctx);
      }
      const bypass = !rs.methods.has(m) || excluded(ctx.request.path);
      const st: State = { primary: primaryKey(ctx.request, rs), key: '', stale: undefined, release: undefined, record: undefined, served: false, invalidate: !SAFE.has(m), bypass, client: undefined };
      ctx.filterState.set(phase, st);
      if (bypass) {
        metrics.count('bypass');
        return undefined;
      }
      return lookup(ctx, st, false);
    },

    onResponseHeaders(ctx) {
      const st = state(ctx);
      const res = ctx.response;
      if (!st || st.served || !res) return undefined;
      const m = ctx.request.method;
      if (st.bypass) {
        res.headers[header] = 'BYPASS';
        if (st.invalidate && res.status < 400) invalidate(ctx, st, res.headers);
        return undefined;
      }
      const preq = policyRequest(ctx);
      if (st.stale && res.status === 304) {
        const { modified } = st.stale.policy.revalidatedPolicy(preq, { status: 304, headers: res.headers });
        if (!modified) {
          const e = refreshed(st.stale, preq, res.headers);
          const release = st.release;
          st.release = undefined;
          const r = store.set(e, store.varyNames(st.primary));
          if (isPromise<boolean>(r)) r.then(() => release?.(), () => release?.());
          else release?.();
          return answer(ctx, e, 'HIT');
        }
      }
      if (st.stale && res.status >= 500 && staleUsable(st.stale)) {
        releaseFill(st);
        return answer(ctx, st.stale, 'STALE');
      }
      res.headers[header] = 'MISS';
      if (m === 'HEAD' || !st.release) {
        releaseFill(st);
        return undefined;
      }
      const stored = storedHeaders(res.headers, rs);
      const policy = policyFor(preq, res.status, stored, !rs.cachePrivate);
      const vary = varyNames(res.headers);
      const validators = stored['etag'] !== undefined || stored['last-modified'] !== undefined;
      // Worth keeping: fresh, or revalidatable, or usable stale when the origin fails.
      const reusable = stored['set-cookie'] === undefined && (validators || (rs.staleIfErrorSecs > 0 && !ccDirective(stored, 'must-revalidate')));
      const useful = policy.timeToLive() > 0 || reusable;
      if (!policy.storable() || !useful || vary.includes('*') || (rs.statuses && !rs.statuses.has(res.status))) {
        releaseFill(st);
        return undefined;
      }
      st.record = { policy, headers: stored, status: res.status, vary, tags: tagsOf(res.headers), chunks: [], size: 0, started: performance.now() };
      return undefined;
    },

    onResponseBody(ctx, chunk: BodyChunk) {
      const st = state(ctx);
      const rec = st?.record;
      if (!st || !rec) return undefined;
      if (chunk.data.length) {
        rec.size += chunk.data.length;
        if (rec.size > rs.maxObjectBytes) {
          st.record = undefined;
          releaseFill(st);
          return undefined;
        }
        rec.chunks.push(Buffer.from(chunk.data));
      }
      if (chunk.end) {
        st.record = undefined;
        const body = Buffer.concat(rec.chunks, rec.size);
        const key = variantKey(st.primary, rec.vary, ctx.request.headers);
        const e: Entry = { primary: st.primary, key, policy: rec.policy, headers: rec.headers, status: rec.status, body, tags: rec.tags, size: body.length + headerBytes(rec.policy.responseHeaders() as HeaderMap) };
        // Held until published (on-log, which runs at the client's last byte, must not let waiters go first).
        const release = st.release;
        st.release = undefined;
        const published = (ok: boolean): void => {
          if (ok) metrics.fillSeconds.observe((performance.now() - rec.started) / 1000);
          release?.();
        };
        const r = store.set(e, rec.vary);
        // A disk write finishes after the client has its last byte; waiters are let go once it is published.
        if (isPromise<boolean>(r)) r.then(published, () => published(false));
        else published(r);
      }
      return undefined;
    },

    onLog(ctx) {
      const st = state(ctx);
      if (st) releaseFill(st);
    },
  };

  /** RFC 9111 §3.2: the 304's fields replace the stored ones, except those describing the body. */
  const refreshed = (stale: Entry, preq: CachePolicy.Request, h304: HeaderMap): Entry => {
    const headers: HeaderMap = { ...stale.headers };
    for (const k in h304) if (!KEPT_ON_304.has(k)) headers[k] = h304[k];
    return { ...stale, headers, policy: policyFor(preq, stale.status, headers, !rs.cachePrivate) };
  };

  /**
   * One conditional request for a stale entry, with no client waiting on it: a 304 refreshes
   * the entry, a storable 200 replaces it, anything else leaves it to expire. The fill lock of
   * the key is held meanwhile, so a burst of stale hits starts one revalidation.
   */
  const revalidateInBackground = (ctx: RequestContext, st: State, e: Entry, release: () => void): void => {
    const req = ctx.request;
    const preq = policyRequest(ctx);
    const headers: HeaderMap = {};
    for (const k in req.headers) if (!HOP_OR_CONDITIONAL.has(k)) headers[k] = req.headers[k];
    const rh = e.policy.revalidationHeaders({ ...preq, headers: { ...req.headers, host: req.authority } });
    for (const name of ['if-none-match', 'if-modified-since'] as const) if (rh[name] !== undefined) headers[name] = rh[name];
    headers['host'] = req.authority;
    const started = performance.now();
    env.origin!(env.upstream!, { method: 'GET', path: req.query === '' ? req.path : `${req.path}?${req.query}`, headers })
      .then((res): boolean | Promise<boolean> => {
        if (res.status === 304) return store.set(refreshed(e, preq, res.headers), store.varyNames(st.primary));
        const stored = storedHeaders(res.headers, rs);
        const policy = policyFor(preq, res.status, stored, !rs.cachePrivate);
        const vary = varyNames(res.headers);
        if (!policy.storable() || policy.timeToLive() <= 0 || vary.includes('*') || res.body.length > rs.maxObjectBytes || (rs.statuses && !rs.statuses.has(res.status))) return false;
        const key = variantKey(st.primary, vary, req.headers);
        return store.set({ primary: st.primary, key, policy, headers: stored, status: res.status, body: res.body, tags: tagsOf(res.headers), size: res.body.length + headerBytes(policy.responseHeaders() as HeaderMap) }, vary);
      })
      .then((ok) => {
        if (ok) metrics.fillSeconds.observe((performance.now() - started) / 1000);
      }, () => {
        // The origin failed: the stale entry stays until its stale-while-revalidate window ends.
      })
      .finally(release);
  };

  /** Origin failed outright (connect, reset, timeout): a usable stale entry answers instead. */
  phase.recover = (ctx: RequestContext, _err: WeirError) => {
    const st = state(ctx);
    if (!st || st.served || !st.stale || !staleUsable(st.stale)) return undefined;
    releaseFill(st);
    return answer(ctx, st.stale, 'STALE');
  };

  /** RFC 9111 §4.4: a successful unsafe request invalidates the URL and its Location / Content-Location. */
  const invalidate = (ctx: RequestContext, st: State, h: HeaderMap): void => {
    let n = store.deletePrimary(st.primary);
    const base = `${ctx.request.scheme}://${ctx.request.authority}`;
    for (const name of ['location', 'content-location']) {
      const v = first(h, name);
      if (!v) continue;
      try {
        const u = new URL(v, base + ctx.request.path);
        if (u.host.toLowerCase() !== ctx.request.authority.toLowerCase()) continue;
        n += store.deletePrimary(primaryKey(ctx.request, rs, u.pathname, u.search.slice(1)));
      } catch {
        // not a URL: nothing to invalidate
      }
    }
    metrics.count('purged', n);
  };

  return phase;
}

function releaseFill(st: State): void {
  const r = st.release;
  st.release = undefined;
  r?.();
}

/** Cache-Control with its directive names lowercased (they are case-insensitive; the library compares them as written). */
function lowerDirectives(v: string): string {
  return v.replace(/(^|,)(\s*)([^=,\s]+)/g, (_m, sep: string, sp: string, name: string) => sep + sp + name.toLowerCase());
}

/**
 * RFC 9111 §5.1: an Age that is not one non-negative integer is invalid; such a response is
 * treated as stale (the library would read the first number of "0, 0" or of "abc" as fresh).
 */
const INVALID_AGE = '2147483648';

/**
 * RFC 9111 §5.2.2.2: must-revalidate binds once the response is stale. http-cache-semantics
 * (4.3) refuses every reuse of it, fresh or not; while fresh it is judged without the directive.
 */
const withoutMustRevalidate = new WeakMap<CachePolicy, CachePolicy>();
function evaluate(policy: CachePolicy, req: CachePolicy.Request): ReturnType<CachePolicy['evaluateRequest']> {
  const ev = policy.evaluateRequest(req);
  if (ev.response || policy.stale() || !ccDirective(policy.responseHeaders() as HeaderMap, 'must-revalidate')) return ev;
  let relaxed = withoutMustRevalidate.get(policy);
  if (!relaxed) {
    const o = policy.toObject();
    const rescc: Record<string, unknown> = { ...o.rescc };
    delete rescc['must-revalidate'];
    relaxed = CachePolicy.fromObject({ ...o, rescc } as typeof o);
    withoutMustRevalidate.set(policy, relaxed);
  }
  const r = relaxed.evaluateRequest(req);
  return r.response ? r : ev;
}

/** Statuses http-cache-semantics (4.3) knows; it refuses to store any other. */
const LIBRARY_STATUSES = new Set([200, 203, 204, 300, 301, 302, 303, 307, 308, 404, 405, 410, 414, 501]);

/**
 * The policy of a response. RFC 9111 §3 lets a cache store any final status with explicit
 * freshness (unless `must-understand`); the library only stores the statuses it knows, so
 * another one with explicit freshness is judged as a 200 (the entry keeps its real status).
 */
function policyFor(req: CachePolicy.Request, status: number, headers: HeaderMap, shared: boolean): CachePolicy {
  let judged = status;
  if (!LIBRARY_STATUSES.has(status) && status >= 200 && status !== 206 && status !== 304 && !ccDirective(headers, 'must-understand')) {
    const explicit = headers['expires'] !== undefined || ccDirective(headers, 'max-age') !== undefined || (shared && ccDirective(headers, 's-maxage') !== undefined);
    if (explicit) judged = 200;
  }
  return new CachePolicy(req, { status: judged, headers }, { shared });
}

/** A copy of the response head to store; `default-ttl-secs` adds freshness where the origin gave none. */
function storedHeaders(h: HeaderMap, rs: RouteCacheSettings): HeaderMap {
  const out: HeaderMap = { ...h };
  const written = first(h, 'cache-control');
  if (written !== undefined) out['cache-control'] = lowerDirectives(written);
  const age = h['age'];
  if (age !== undefined && (Array.isArray(age) || !/^\d+$/.test(age.trim()))) out['age'] = INVALID_AGE;
  if (rs.staleWhileRevalidateSecs !== undefined) {
    const cc = first(out, 'cache-control') ?? '';
    if (!/stale-while-revalidate|no-cache|no-store|must-revalidate/i.test(cc)) out['cache-control'] = cc ? `${cc}, stale-while-revalidate=${rs.staleWhileRevalidateSecs}` : `stale-while-revalidate=${rs.staleWhileRevalidateSecs}`;
  }
  if (rs.defaultTtlSecs !== undefined) {
    const cc = first(out, 'cache-control') ?? '';
    if (!/(^|,)\s*(s-maxage|max-age)\s*=/i.test(cc) && out['expires'] === undefined && !/no-cache|no-store/i.test(cc)) {
      out['cache-control'] = cc ? `${cc}, max-age=${rs.defaultTtlSecs}` : `max-age=${rs.defaultTtlSecs}`;
    }
  }
  return out;
}
