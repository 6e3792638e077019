/**
 * Answers a GET/HEAD for a complete, known representation (a cache entry, a static file):
 * conditional requests (RFC 9110 §13: If-None-Match, If-Modified-Since, If-Range) and
 * single byte ranges (§14). Shared by the cache and static files.
 */
import type { HeaderMap } from '../pipeline/phases.ts';

function first(h: HeaderMap, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

function opaque(tag: string): string {
  return tag.trim().replace(/^W\//, '');
}

/** Weak comparison of an If-None-Match list against one entity tag. */
export function etagMatches(list: string, etag: string | undefined): boolean {
  // `*` matches any current representation, and the caller has one.
  if (list.trim() === '*') return true;
  if (etag === undefined) return false;
  const want = opaque(etag);
  return list.split(',').some((t) => opaque(t) === want);
}

/** RFC 9110 §13.2.2 for GET/HEAD: true when the client's copy is current (answer 304). */
export function notModified(req: HeaderMap, res: HeaderMap): boolean {
  const inm = first(req, 'if-none-match');
  if (inm !== undefined) return etagMatches(inm, first(res, 'etag'));
  const ims = first(req, 'if-modified-since');
  const lm = first(res, 'last-modified');
  if (ims === undefined || lm === undefined) return false;
  const a = Date.parse(lm);
  const b = Date.parse(ims);
  return Number.isFinite(a) && Number.isFinite(b) && a <= b;
}

/** Headers a 304 carries over from the 200 it stands for (RFC 9110 §15.4.5). */
const NOT_MODIFIED_KEEPS = ['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified', 'age', 'via'];

export function notModifiedHeaders(res: HeaderMap): HeaderMap {
  const out: HeaderMap = {};
  for (const k of NOT_MODIFIED_KEEPS) if (res[k] !== undefined) out[k] = res[k];
  return out;
}

export type RangeResult =
  | { readonly kind: 'full' }
  | { readonly kind: 'partial'; readonly start: number; readonly end: number }
  | { readonly kind: 'unsatisfiable' };

/**
 * The byte range a GET asks for, against a representation of `length` bytes. Several
 * ranges, an unknown unit or a failed If-Range give the full representation (allowed by §14.2).
 */
export function selectRange(req: HeaderMap, res: HeaderMap, length: number): RangeResult {
  const range = first(req, 'range');
  if (range === undefined) return { kind: 'full' };
  const ifRange = first(req, 'if-range');
  if (ifRange !== undefined) {
    const etag = first(res, 'etag');
    if (ifRange.trim().startsWith('"') || ifRange.trim().startsWith('W/')) {
      // Strong comparison: weak tags never match.
      if (etag === undefined || etag.startsWith('W/') || ifRange.trim() !== etag.trim()) return { kind: 'full' };
    } else if (first(res, 'last-modified') !== ifRange.trim()) return { kind: 'full' };
  }
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(range);
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    start = Math.max(0, length - suffix);
    end = length - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? length - 1 : Math.min(Number(m[2]), length - 1);
    if (m[2] !== '' && Number(m[2]) < start) return { kind: 'full' };
  }
  if (start >= length || length === 0) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}
