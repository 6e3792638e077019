/**
 * Answers a GET/HEAD for a complete, known representation (a cache entry, a static file):
 * conditional requests (RFC 9110 §13: If-None-Match, If-Modified-Since, If-Range) and
 * byte ranges, one or several (§14, multipart/byteranges). Shared by the cache and static files.
 */
import { randomBytes } from 'node:crypto';
import parseRange from 'range-parser';
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
  | { readonly kind: 'multi'; readonly ranges: ReadonlyArray<{ readonly start: number; readonly end: number }> }
  | { readonly kind: 'unsatisfiable' };

/** More ranges than this in one request get the full representation (many tiny parts cost more than the body; §14.2 allows ignoring Range). */
export const MAX_RANGES = 16;

/**
 * The byte ranges a GET asks for, against a representation of `length` bytes (parsed by
 * range-parser; overlapping and adjacent ranges are merged). An unknown unit, an invalid
 * range, too many ranges or a failed If-Range give the full representation (allowed by §14.2).
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
  if (!/^\s*bytes\s*=/i.test(range)) return { kind: 'full' };
  // A spec whose last byte is before its first is invalid (§14.1.1): the header is ignored.
  for (const m of range.matchAll(/(\d+)\s*-\s*(\d+)/g)) if (Number(m[2]) < Number(m[1])) return { kind: 'full' };
  const r = parseRange(length, range.trim().replace(/^bytes\s*=\s*/i, 'bytes='), { combine: true });
  if (r === -2) return { kind: 'full' };
  if (r === -1 || r.length === 0) return { kind: 'unsatisfiable' };
  if (r.length === 1) return { kind: 'partial', start: r[0]!.start, end: r[0]!.end };
  if (r.length > MAX_RANGES) return { kind: 'full' };
  return { kind: 'multi', ranges: r.map(({ start, end }) => ({ start, end })) };
}

/** A multipart/byteranges body (RFC 9110 §14.6) laid out: each part's head, its bytes, the closing delimiter. */
export interface Multipart {
  readonly contentType: string;
  readonly parts: ReadonlyArray<{ readonly head: Buffer; readonly start: number; readonly end: number }>;
  readonly tail: Buffer;
  /** Total body bytes (heads, parts, tail), for Content-Length. */
  readonly length: number;
}

export function multipart(ranges: ReadonlyArray<{ start: number; end: number }>, total: number, partType: string | undefined): Multipart {
  const boundary = randomBytes(12).toString('hex');
  let length = 0;
  const parts = ranges.map(({ start, end }) => {
    const head = Buffer.from(`\r\n--${boundary}\r\n${partType ? `content-type: ${partType}\r\n` : ''}content-range: bytes ${start}-${end}/${total}\r\n\r\n`);
    length += head.length + end - start + 1;
    return { head, start, end };
  });
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { contentType: `multipart/byteranges; boundary=${boundary}`, parts, tail, length: length + tail.length };
}
