/**
 * Request path normalisation at the edge (RFC 3986 §6.2.2 plus the escaped-slash rules of
 * an edge proxy). Weir routes on the normalised path and forwards the same path, so a route
 * that denies `/admin` cannot be bypassed by `/public/../admin`, `/%61dmin`, `//admin` or
 * `/public/..%5cadmin`: what was checked is what the origin gets.
 *
 * Steps, in order: percent-decode the unreserved characters (ALPHA DIGIT - . _ ~) and
 * upper-case the hex of every other escape; apply the escaped-slash policy to `%2F`, `%5C`
 * and raw `\`; drop empty segments (merge-slashes); remove `.` and `..` segments. Refused:
 * malformed escapes, `%00`, a `..` that climbs above the root (as nginx does), and `.`/`..`
 * segments carrying a `;` parameter (Tomcat reads `/..;/` as `..`).
 *
 * The proxy and `weir simulate` both call `normalizePath`; nothing else normalises paths.
 */

/** What to do with `%2F`, `%5C` and a raw `\` in a path. */
export type EscapedSlashes = 'reject' | 'keep' | 'decode-and-redirect' | 'decode';
export const ESCAPED_SLASHES: readonly EscapedSlashes[] = ['reject', 'keep', 'decode-and-redirect', 'decode'];

export interface PathPolicy {
  /** Collapse `//` into `/`. */
  readonly mergeSlashes: boolean;
  readonly escapedSlashes: EscapedSlashes;
}

export const DEFAULT_PATH_POLICY: PathPolicy = Object.freeze({ mergeSlashes: true, escapedSlashes: 'reject' });

/** The request must be refused with 400 WEIR_ERR_PATH_REJECTED. */
export interface PathRejected {
  readonly kind: 'reject';
  readonly reason: string;
}

/** `decode-and-redirect`: the client is sent to `location` (the decoded, normalised path). */
export interface PathRedirect {
  readonly kind: 'redirect';
  readonly location: string;
}

/** The normalised path (the input itself when nothing changes), a rejection, or a redirect. */
export type PathOutcome = string | PathRejected | PathRedirect;

const HEX = '0123456789ABCDEF';

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  c |= 0x20; // lower-case a letter
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(b: number): boolean {
  return (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b === 45 || b === 46 || b === 95 || b === 126;
}

/**
 * True when `path` may need work: it has a `%`, a `\`, a `//`, or a segment starting
 * with `.`. Paths without any of these are already normal (the hot path).
 */
export function needsNormalization(path: string): boolean {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 /* % */ || c === 92 /* \ */) return true;
    if (c === 47 /* / */) {
      const n = path.charCodeAt(i + 1);
      if (n === 47 || n === 46 /* . */) return true;
    }
  }
  return false;
}

const reject = (reason: string): PathRejected => ({ kind: 'reject', reason });

/**
 * Normalises an origin-form path (no query). Paths that do not start with `/` (the `*` of
 * OPTIONS, an empty CONNECT path) are returned unchanged.
 */
export function normalizePath(path: string, policy: PathPolicy = DEFAULT_PATH_POLICY): PathOutcome {
  if (path.charCodeAt(0) !== 47 || !needsNormalization(path)) return path;
  // 1. escapes and backslashes, one pass; untouched runs are copied as slices
  let out = '';
  let run = 0;
  let slashEscapes = false;
  const esc = policy.escapedSlashes;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 92 /* raw \ */) {
      if (esc === 'reject') return reject('backslash in the path');
      out += path.slice(run, i);
      run = i + 1;
      if (esc === 'keep') out += '%5C';
      else {
        out += '/';
        slashEscapes = true;
      }
      continue;
    }
    if (c !== 37 /* % */) continue;
    const hi = hexVal(path.charCodeAt(i + 1));
    const lo = hexVal(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return reject('malformed percent-encoding in the path');
    const b = hi * 16 + lo;
    out += path.slice(run, i);
    i += 2;
    run = i + 1;
    if (b === 0) return reject('encoded NUL in the path');
    if (isUnreserved(b)) out += String.fromCharCode(b);
    else if (b === 0x2f || b === 0x5c) {
      if (esc === 'reject') return reject(b === 0x2f ? 'encoded slash (%2F) in the path' : 'encoded backslash (%5C) in the path');
      if (esc === 'keep') out += b === 0x2f ? '%2F' : '%5C';
      else {
        out += '/';
        slashEscapes = true;
      }
    } else out += `%${HEX[hi]}${HEX[lo]}`;
  }
  out += path.slice(run);
  // 2. remove dot segments (RFC 3986 §5.2.4), then merge slashes (as Envoy orders them)
  const segs = out.split('/');
  const stack: string[] = [];
  let dotAtEnd = false;
  // segs[0] is the empty string before the leading '/'
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    dotAtEnd = false;
    if (s === '.' || s === '..') {
      if (s === '..') {
        if (stack.length === 0) return reject('the path climbs above the root');
        stack.pop();
      }
      // "/a/." and "/a/b/.." both name a directory: keep the trailing slash.
      dotAtEnd = i === segs.length - 1;
      continue;
    }
    if (s.charCodeAt(0) === 46 /* . */) {
      const semi = s.indexOf(';');
      const bare = semi === -1 ? s : s.slice(0, semi);
      if (bare === '.' || bare === '..') return reject('dot segment with a parameter in the path');
    }
    stack.push(s);
  }
  let parts = stack;
  let trailing = dotAtEnd;
  if (policy.mergeSlashes) {
    trailing ||= stack.length > 0 && stack[stack.length - 1] === '';
    parts = stack.filter((s) => s !== '');
  }
  let norm = `/${parts.join('/')}`;
  if (trailing && parts.length > 0) norm += '/';
  if (slashEscapes && esc === 'decode-and-redirect') return { kind: 'redirect', location: norm };
  return norm === path ? path : norm;
}

/**
 * The path-and-query of an absolute-form target as sent (`http://h/a?b` → `/a?b`), not the
 * WHATWG URL's already-resolved pathname, so absolute-form gets the same rules as origin-form.
 */
export function originFormOf(url: string): string {
  let i = url.indexOf('//') + 2;
  for (; i < url.length; i++) {
    const c = url.charCodeAt(i);
    if (c === 47 /* / */ || c === 63 /* ? */ || c === 92 /* \ */) break;
  }
  return url.charCodeAt(i) === 47 ? url.slice(i) : `/${url.slice(i)}`;
}
