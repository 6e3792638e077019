/**
 * Route matching. Routes are tried in priority order (the config sorts them); the first
 * whose any `matches` block accepts the request wins. Each block is compiled once per
 * config snapshot into a list of cheap checks, cheapest first.
 */
import type { RouteConfig, RouteMatch } from '../config/types.ts';
import type { HeaderMap } from '../pipeline/phases.ts';

export interface MatchInput {
  readonly method: string;
  /** Host without port, lowercased. */
  readonly host: string;
  readonly path: string;
  readonly query: string;
  readonly headers: HeaderMap;
}

type Check = (req: MatchInput) => boolean;

export interface CompiledRoute {
  readonly config: RouteConfig;
  readonly blocks: readonly Check[][];
}

/** Why a route did or did not match, for `weir simulate`. */
export interface MatchTrace {
  readonly route: string;
  readonly matched: boolean;
  readonly reason: string;
}

function hostMatcher(pattern: string): (host: string) => boolean {
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1); // ".example.com"
    return (h) => h.endsWith(suffix) && h.length > suffix.length;
  }
  return (h) => h === pattern;
}

function headerValues(headers: HeaderMap, name: string): string[] | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return Array.isArray(v) ? v : [v];
}

export function parseQuery(query: string): URLSearchParams {
  return new URLSearchParams(query);
}

function compileBlock(m: RouteMatch): { checks: Check[]; describe: string[] } {
  const checks: Check[] = [];
  const describe: string[] = [];
  if (m.methods.length > 0) {
    const set = new Set(m.methods);
    checks.push((r) => set.has(r.method));
    describe.push(`method ∈ {${m.methods.join(', ')}}`);
  }
  if (m.paths.length > 0 || m.pathPrefixes.length > 0 || m.pathRegexes.length > 0) {
    const exact = new Set(m.paths);
    const prefixes = m.pathPrefixes;
    const regexes = m.pathRegexes.map((r) => new RegExp(r));
    checks.push((r) => {
      if (exact.has(r.path)) return true;
      for (const p of prefixes) if (r.path.startsWith(p)) return true;
      for (const re of regexes) if (re.test(r.path)) return true;
      return false;
    });
    describe.push(`path ${[...m.paths.map((p) => `= ${p}`), ...prefixes.map((p) => `starts with ${p}`), ...m.pathRegexes.map((p) => `~ ${p}`)].join(' or ')}`);
  }
  if (m.hosts.length > 0) {
    const ms = m.hosts.map(hostMatcher);
    checks.push((r) => ms.some((f) => f(r.host)));
    describe.push(`host ∈ {${m.hosts.join(', ')}}`);
  }
  for (const h of m.headers) {
    const re = h.regex !== undefined ? new RegExp(h.regex) : undefined;
    checks.push((r) => {
      const vals = headerValues(r.headers, h.name);
      if (vals === undefined) return false;
      if (re) return vals.some((v) => re.test(v));
      if (h.value !== undefined) return vals.includes(h.value);
      return true;
    });
    describe.push(`header ${h.name}${h.value !== undefined ? ` = ${h.value}` : re ? ` ~ ${h.regex}` : ' present'}`);
  }
  if (m.query.length > 0) {
    const qs = m.query;
    checks.push((r) => {
      const p = parseQuery(r.query);
      return qs.every((q) => (q.value === undefined ? p.has(q.name) : p.getAll(q.name).includes(q.value)));
    });
    describe.push(`query ${qs.map((q) => (q.value === undefined ? q.name : `${q.name}=${q.value}`)).join(' & ')}`);
  }
  return { checks, describe };
}

const ANY = '*';

/** First path segment: "/api/v1/x" → "api", "/" → "". */
function firstSegment(path: string): string {
  const end = path.indexOf('/', 1);
  return end === -1 ? path.slice(1) : path.slice(1, end);
}

/** The exact hosts a route can match, or [ANY]. */
function hostKeys(r: RouteConfig): string[] {
  if (r.matches.length === 0) return [ANY];
  const keys = new Set<string>();
  for (const m of r.matches) {
    if (m.hosts.length === 0 || m.hosts.some((h) => h.includes('*'))) return [ANY];
    for (const h of m.hosts) keys.add(h);
  }
  return [...keys];
}

/** The first path segments a route can match, or [ANY] when a prefix or regex could span more. */
function segmentKeys(r: RouteConfig): string[] {
  if (r.matches.length === 0) return [ANY];
  const keys = new Set<string>();
  for (const m of r.matches) {
    if (m.pathRegexes.length > 0 || (m.paths.length === 0 && m.pathPrefixes.length === 0)) return [ANY];
    for (const p of m.paths) keys.add(firstSegment(p));
    for (const p of m.pathPrefixes) {
      // "/api/" or "/api/v1" pins the segment; "/" or "/ap" could match "/apx…" too.
      if (p.indexOf('/', 1) === -1) return [ANY];
      keys.add(firstSegment(p));
    }
  }
  return [...keys];
}

export class Router {
  readonly routes: readonly CompiledRoute[];
  private readonly descriptions: ReadonlyMap<string, string[][]>;
  /**
   * Route indexes (ascending = match order) by "host\0segment", with ANY for either part a
   * route does not pin. A lookup merges at most four lists, so 1,000 routes cost about
   * what the few that could match cost.
   */
  private readonly index = new Map<string, number[]>();

  constructor(routes: readonly RouteConfig[]) {
    const descriptions = new Map<string, string[][]>();
    this.routes = routes.map((config) => {
      const compiled = config.matches.map(compileBlock);
      descriptions.set(config.name, compiled.map((c) => c.describe));
      // No matches block at all means "match everything"; a disabled route has no block to accept.
      const blocks = config.enabled === false ? [] : compiled.length === 0 ? [[]] : compiled.map((c) => c.checks);
      return { config, blocks };
    });
    this.descriptions = descriptions;
    routes.forEach((r, i) => {
      for (const h of hostKeys(r)) {
        for (const seg of segmentKeys(r)) {
          const key = `${h}\u0000${seg}`;
          let list = this.index.get(key);
          if (!list) this.index.set(key, (list = []));
          list.push(i);
        }
      }
    });
  }

  private static accepts(route: CompiledRoute, req: MatchInput): boolean {
    const blocks = route.blocks;
    outer: for (let b = 0; b < blocks.length; b++) {
      const checks = blocks[b]!;
      for (let c = 0; c < checks.length; c++) if (!checks[c]!(req)) continue outer;
      return true;
    }
    return false;
  }

  /** The enabled route called `name` (a listener's `default-route`). */
  named(name: string): CompiledRoute | undefined {
    return this.routes.find((r) => r.config.name === name && r.config.enabled !== false);
  }

  match(req: MatchInput): CompiledRoute | undefined {
    const seg = firstSegment(req.path);
    const idx = this.index;
    const a = idx.get(`${req.host}\u0000${seg}`);
    const b = idx.get(`${req.host}\u0000${ANY}`);
    const c = idx.get(`${ANY}\u0000${seg}`);
    const d = idx.get(`${ANY}\u0000${ANY}`);
    // Merge the candidate lists in route order; the first route that accepts wins.
    let ia = 0, ib = 0, ic = 0, id = 0;
    const routes = this.routes;
    for (;;) {
      let next = Infinity;
      if (a && ia < a.length && a[ia]! < next) next = a[ia]!;
      if (b && ib < b.length && b[ib]! < next) next = b[ib]!;
      if (c && ic < c.length && c[ic]! < next) next = c[ic]!;
      if (d && id < d.length && d[id]! < next) next = d[id]!;
      if (next === Infinity) return undefined;
      if (a && a[ia] === next) ia++;
      if (b && b[ib] === next) ib++;
      if (c && c[ic] === next) ic++;
      if (d && d[id] === next) id++;
      const route = routes[next]!;
      if (Router.accepts(route, req)) return route;
    }
  }

  /** Every route in order with why it matched or not (for `weir simulate`). */
  explain(req: MatchInput): MatchTrace[] {
    const out: MatchTrace[] = [];
    let found = false;
    for (const route of this.routes) {
      const desc = this.descriptions.get(route.config.name) ?? [];
      if (found) {
        out.push({ route: route.config.name, matched: false, reason: 'not tried: an earlier route matched' });
        continue;
      }
      if (route.config.enabled === false) {
        out.push({ route: route.config.name, matched: false, reason: 'disabled (`enabled #false`)' });
        continue;
      }
      let reason = 'no matches block: matches every request';
      let matched = false;
      if (route.config.matches.length === 0) matched = true;
      for (let b = 0; b < route.blocks.length && !matched; b++) {
        const checks = route.blocks[b]!;
        const failed = checks.findIndex((c) => !c(req));
        if (failed === -1) {
          matched = true;
          reason = `all of: ${desc[b]?.join('; ') || 'anything'}`;
        } else {
          reason = `failed: ${desc[b]?.[failed] ?? 'condition'}`;
        }
      }
      if (matched) found = true;
      out.push({ route: route.config.name, matched, reason: `priority ${route.config.priority}, ${reason}` });
    }
    return out;
  }
}

/** Lowercased host without port from a Host header / :authority. */
export function hostOf(authority: string | undefined): string {
  if (!authority) return '';
  let h = authority;
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return (end === -1 ? h : h.slice(0, end + 1)).toLowerCase();
  }
  const colon = h.lastIndexOf(':');
  if (colon !== -1) h = h.slice(0, colon);
  return h.toLowerCase();
}
