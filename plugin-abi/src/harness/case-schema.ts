/**
 * The shape of a `weir plugin test` case file, checked strictly before any case runs: an
 * unknown key (a typo like `respnse`) or a value of the wrong type is an error naming its
 * JSON path, never an expectation silently skipped. docs/plugin-testing.md describes it.
 */

/** A value's expected shape. */
type Shape =
  | 'string' | 'number' | 'integer' | 'boolean' | 'null'
  | { readonly object: Readonly<Record<string, Shape>> }
  | { readonly array: Shape }
  | { readonly record: Shape }
  | { readonly anyOf: readonly Shape[] };

const str: Shape = 'string';
const headers: Shape = { record: { anyOf: ['string', { array: 'string' }, 'null'] } };
const names: Shape = { array: 'string' };
const regexes: Shape = { record: 'string' };

const REQUEST: Shape = { object: { method: str, path: str, query: str, headers, body: str, client: str, scheme: str, authority: str } };
const UPSTREAM: Shape = { object: { status: 'integer', headers, body: str } };
const TARGET: Shape = {
  object: {
    address: str, weight: 'integer', zone: str, healthy: 'boolean', inFlight: 'integer', ewmaLatencyMs: 'number',
    totalRequests: 'integer', totalFailures: 'integer', consecutiveFailures: 'integer', lastFailureMs: 'integer',
  },
};
const EXPECT: Shape = {
  object: {
    local: 'boolean',
    error: str,
    upstream: str,
    upstreamRequest: { object: { method: str, path: str, query: str, headers, absentHeaders: names, presentHeaders: names, headerMatches: regexes, body: str } },
    response: { object: { status: 'integer', headers, absentHeaders: names, presentHeaders: names, headerMatches: regexes, body: str, bodyContains: str } },
    target: { anyOf: ['integer', 'null'] },
    pauseMs: 'integer',
    properties: { record: { anyOf: ['string', 'null'] } },
    logs: { array: str },
  },
};
const CLOCK: Shape = { object: { nowMs: 'integer' } };
const STORE: Shape = { object: { kv: { record: str } } };
const CASE: Shape = { object: { name: str, why: str, config: str, clock: CLOCK, store: STORE, request: REQUEST, upstream: UPSTREAM, targets: { array: TARGET }, expect: EXPECT } };
const FILE: Shape = { object: { config: str, clock: CLOCK, cases: { array: CASE } } };

/** Keys a case must have (the rest are optional). */
const REQUIRED: Readonly<Record<string, readonly string[]>> = { '': ['cases'], 'cases[]': ['name', 'expect'], 'cases[].targets[]': ['address'] };

function kind(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** Whether `v` has the outer type of `s` (anyOf is resolved by check). */
function fits(v: unknown, s: Exclude<Shape, { readonly anyOf: readonly Shape[] }>): boolean {
  if (s === 'integer') return Number.isInteger(v);
  if (typeof s === 'string') return kind(v) === s;
  if ('array' in s) return Array.isArray(v);
  return kind(v) === 'object';
}

function describe(s: Shape): string {
  if (typeof s === 'string') return s;
  if ('anyOf' in s) return s.anyOf.map(describe).join(' or ');
  if ('array' in s) return `array of ${describe(s.array)}`;
  return 'object';
}

function check(v: unknown, s: Shape, path: string, generic: string, out: string[]): string[] {
  if (typeof s !== 'string' && 'anyOf' in s) {
    if (!s.anyOf.some((x) => check(v, x, path, generic, []).length === 0)) out.push(`${path || '(top)'}: expected ${describe(s)}, got ${kind(v)}`);
    return out;
  }
  if (!fits(v, s)) {
    out.push(`${path || '(top)'}: expected ${describe(s)}, got ${kind(v)}`);
    return out;
  }
  if (typeof s === 'string') return out;
  if ('array' in s) {
    (v as unknown[]).forEach((x, i) => check(x, s.array, `${path}[${i}]`, `${generic}[]`, out));
    return out;
  }
  const o = v as Record<string, unknown>;
  if ('record' in s) {
    for (const [k, x] of Object.entries(o)) check(x, s.record, `${path}.${k}`, `${generic}.*`, out);
    return out;
  }
  for (const k of REQUIRED[generic] ?? []) if (!(k in o)) out.push(`${path || '(top)'}: missing key ${k}`);
  const known = Object.keys(s.object);
  for (const [k, x] of Object.entries(o)) {
    const sub = s.object[k];
    const p = path ? `${path}.${k}` : k;
    if (sub === undefined) out.push(`${p}: unknown key (known here: ${known.join(', ')})`);
    else check(x, sub, p, generic ? `${generic}.${k}` : k, out);
  }
  return out;
}

/** Every problem with a parsed case file, each as `json.path: message`; empty when it is valid. */
export function caseFileProblems(parsed: unknown): string[] {
  return check(parsed, FILE, '', '', []);
}
