/**
 * Between the host's request context and the WIT types: header and property lists, what
 * select-upstream and on-log receive, and validating + applying the mutations a plugin returns. A plugin's output is
 * untrusted: nothing it returns reaches the wire unchecked (no CR/LF/NUL in headers, valid
 * tokens and statuses, size limits) — an invalid mutation is a plugin error.
 */
import { WeirError } from '../../../host/src/errors.ts';
import type { HeaderMap, LocalReply, RequestContext, TargetStats } from '../../../host/src/pipeline/phases.ts';
import type * as W from '../../generated/types.ts';

/** RFC 9110 token characters (header names, methods). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Field values on the wire (Node's latin1 strings): visible ASCII, obs-text, SP and HTAB; no CR, LF or NUL. */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const NON_ASCII = /[^\x00-\x7f]/;

/**
 * Header values travel as bytes; Node hands them over as latin1 strings (one char a byte)
 * while the WIT's strings are Unicode. Values whose bytes are UTF-8 reach plugins decoded;
 * anything else passes one char a byte. Plugin values go back to the wire as UTF-8 bytes.
 */
export function valueFromWire(v: string): string {
  if (!NON_ASCII.test(v)) return v;
  const bytes = Buffer.from(v, 'latin1');
  const text = bytes.toString('utf8');
  return Buffer.byteLength(text) === bytes.length && !text.includes('\ufffd') ? text : v;
}

export function valueToWire(v: string): string {
  return NON_ASCII.test(v) ? Buffer.from(v, 'utf8').toString('latin1') : v;
}
const MAX_HEADER_VALUE = 16 * 1024;
const MAX_HEADERS_ADDED = 100;
const MAX_PATH = 8 * 1024;

/** Headers that only the host may set: framing and hop-by-hop. */
const FORBIDDEN = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'host']);

export function headerList(headers: HeaderMap): W.Header[] {
  const out: W.Header[] = [];
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined) continue;
    if (typeof v === 'string') out.push({ name, value: valueFromWire(v) });
    else for (const x of v) out.push({ name, value: valueFromWire(x) });
  }
  return out;
}

export function propertyList(props: ReadonlyMap<string, string>): W.Property[] {
  const out: W.Property[] = [];
  for (const [key, value] of props) out.push({ key, value });
  return out;
}

/** What on-log receives about a finished exchange. */
export function logSummary(ctx: RequestContext): W.LogSummary {
  return {
    status: ctx.response?.status ?? 0,
    errorCode: ctx.error?.code,
    upstreamAddress: ctx.upstream?.target,
    bytesReceived: BigInt(ctx.bytesIn),
    bytesSent: BigInt(ctx.bytesOut),
    durationMs: performance.now() - ctx.startTime,
    upstreamDurationMs: ctx.upstreamMs,
    attempts: ctx.attempts,
  };
}

/** What select-upstream learns about the attempt it chooses for: 0 first, then 1, 2, … with the last target tried. */
export function upstreamInfo(ctx: RequestContext, localZone: string): W.UpstreamInfo {
  return { name: ctx.upstream?.name ?? '', localZone, attempt: ctx.attempts, previous: ctx.attempts === 0 ? undefined : ctx.previousTarget };
}

export function targets(list: readonly TargetStats[]): W.Target[] {
  return list.map((t) => ({
    index: t.index,
    address: t.address,
    weight: t.weight,
    zone: t.zone,
    healthy: t.healthy,
    inFlight: t.inFlight,
    ewmaLatencyMs: t.ewmaLatencyMs,
    totalRequests: BigInt(t.totalRequests),
    totalFailures: BigInt(t.totalFailures),
    consecutiveFailures: t.consecutiveFailures,
    lastFailureMs: BigInt(t.lastFailureMs),
  }));
}

function invalid(plugin: string, what: string): WeirError {
  return new WeirError('WEIR_ERR_PLUGIN_INVALID_MUTATION', `plugin ${plugin}: ${what}`);
}

function checkHeader(plugin: string, name: string, value: string | undefined): string {
  const lower = name.toLowerCase();
  if (!TOKEN.test(name)) throw invalid(plugin, `invalid header name ${JSON.stringify(name)}`);
  if (FORBIDDEN.has(lower)) throw invalid(plugin, `header ${lower} is managed by the proxy`);
  if (value !== undefined) {
    if (value.length > MAX_HEADER_VALUE) throw invalid(plugin, `value of header ${lower} is over ${MAX_HEADER_VALUE} bytes`);
    if (!FIELD_VALUE.test(value)) throw invalid(plugin, `value of header ${lower} contains a control character (CR, LF, NUL…)`);
  }
  return lower;
}

/** A plugin's header value as wire bytes (latin1 string), checked. */
function wireValue(plugin: string, name: string, value: string): string {
  const wire = valueToWire(value);
  checkHeader(plugin, name, wire);
  return wire;
}

export function checkStatus(plugin: string, status: number): number {
  if (!Number.isInteger(status) || status < 100 || status > 599) throw invalid(plugin, `invalid status ${status}`);
  return status;
}

/**
 * Validates every mutation first, then applies them all (so a bad batch changes nothing).
 * `target` is 'request' on request hooks, 'response' on response hooks.
 */
export function applyMutations(plugin: string, ctx: RequestContext, target: 'request' | 'response', muts: readonly W.Mutation[]): void {
  if (muts.length > MAX_HEADERS_ADDED * 2) throw invalid(plugin, `too many mutations (${muts.length})`);
  const headers = target === 'request' ? ctx.request.headers : ctx.response!.headers;
  const ops: Array<() => void> = [];
  for (const m of muts) {
    switch (m.tag) {
      case 'set-header': {
        const v = wireValue(plugin, m.val.name, m.val.value);
        const n = m.val.name.toLowerCase();
        ops.push(() => (headers[n] = v));
        break;
      }
      case 'add-header': {
        const v = wireValue(plugin, m.val.name, m.val.value);
        const n = m.val.name.toLowerCase();
        ops.push(() => {
          const prev = headers[n];
          headers[n] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        });
        break;
      }
      case 'remove-header': {
        const n = checkHeader(plugin, m.val, undefined);
        ops.push(() => delete headers[n]);
        break;
      }
      case 'set-path': {
        if (target !== 'request') throw invalid(plugin, 'set-path on a response');
        const p = m.val;
        // Visible ASCII only: a request target is ASCII (plugins percent-encode the rest), and
        // anything else made the upstream client throw, which read as an upstream failure.
        if (p.length === 0 || p[0] !== '/' || p.length > MAX_PATH || /[^\x21-\x7e]|[?#]/.test(p)) throw invalid(plugin, `invalid path ${JSON.stringify(p.slice(0, 100))}`);
        ops.push(() => (ctx.request.path = p));
        break;
      }
      case 'set-query': {
        if (target !== 'request') throw invalid(plugin, 'set-query on a response');
        const q = m.val.startsWith('?') ? m.val.slice(1) : m.val;
        if (q.length > MAX_PATH || /[^\x21-\x7e]|#/.test(q)) throw invalid(plugin, `invalid query ${JSON.stringify(q.slice(0, 100))}`);
        ops.push(() => (ctx.request.query = q));
        break;
      }
      case 'set-method': {
        if (target !== 'request') throw invalid(plugin, 'set-method on a response');
        if (!TOKEN.test(m.val)) throw invalid(plugin, `invalid method ${JSON.stringify(m.val)}`);
        ops.push(() => (ctx.request.method = m.val.toUpperCase()));
        break;
      }
      case 'set-authority': {
        if (target !== 'request') throw invalid(plugin, 'set-authority on a response');
        if (!/^[A-Za-z0-9.\-_~:[\]%]+$/.test(m.val)) throw invalid(plugin, `invalid authority ${JSON.stringify(m.val)}`);
        ops.push(() => {
          ctx.request.authority = m.val;
          ctx.request.headers['host'] = m.val;
        });
        break;
      }
      case 'set-status': {
        if (target !== 'response') throw invalid(plugin, 'set-status on a request');
        const s = checkStatus(plugin, m.val);
        ops.push(() => (ctx.response!.status = s));
        break;
      }
      case 'set-property': {
        if (m.val.key.length > 256 || m.val.value.length > MAX_HEADER_VALUE) throw invalid(plugin, 'property too large');
        ops.push(() => ctx.properties.set(m.val.key, m.val.value));
        break;
      }
      case 'remove-property':
        ops.push(() => ctx.properties.delete(m.val));
        break;
      case 'set-upstream': {
        if (target !== 'request') throw invalid(plugin, 'set-upstream on a response');
        if (!/^[A-Za-z0-9._:-]{1,128}$/.test(m.val)) throw invalid(plugin, `invalid upstream name ${JSON.stringify(m.val)}`);
        // The proxy checks that the upstream exists when it dispatches (WEIR_ERR_NO_UPSTREAM otherwise).
        ops.push(() => (ctx.upstream = { name: m.val, target: undefined }));
        break;
      }
      default:
        throw invalid(plugin, `unknown mutation ${(m as { tag: string }).tag}`);
    }
  }
  for (const op of ops) op();
}

/** Most headers a local reply may carry (a client would refuse a head far larger). */
export const MAX_REPLY_HEADERS = 100;
/** Most bytes of header names and values (plus separators) in a local reply. */
export const MAX_REPLY_HEADER_BYTES = 64 * 1024;

/** A plugin's local reply, validated (a head over the caps is refused whole). */
export function localReply(plugin: string, r: W.LocalReply): LocalReply {
  checkStatus(plugin, r.status);
  if (r.headers.length > MAX_REPLY_HEADERS) throw invalid(plugin, `local reply with ${r.headers.length} headers (at most ${MAX_REPLY_HEADERS})`);
  let size = 0;
  for (const h of r.headers) size += h.name.length + h.value.length + 4;
  if (size > MAX_REPLY_HEADER_BYTES) throw invalid(plugin, `local reply headers of ${size} bytes (at most ${MAX_REPLY_HEADER_BYTES})`);
  const headers: Record<string, string> = {};
  for (const h of r.headers) {
    const v = wireValue(plugin, h.name, h.value);
    const n = h.name.toLowerCase();
    headers[n] = headers[n] === undefined ? v : `${headers[n]}, ${v}`;
  }
  return { status: r.status, headers, body: r.body };
}

/** Longest hold one request gets from `pause` decisions, summed over its filters (ms). */
export const MAX_PAUSE_MS = 60_000;

/**
 * Applies a header hook's decision to the request: mutations (also those of `pause`, whose
 * hold the proxy starts once the request-header chain has run), or a validated local reply.
 */
export function applyDecision(plugin: string, ctx: RequestContext, target: 'request' | 'response', d: W.Decision): LocalReply | undefined {
  switch (d.tag) {
    case 'continue':
      return undefined;
    case 'respond':
      return localReply(plugin, d.val);
    case 'mutate':
      applyMutations(plugin, ctx, target, d.val);
      return undefined;
    case 'pause':
      if (target !== 'request') throw invalid(plugin, 'pause in a response hook');
      applyMutations(plugin, ctx, target, d.val.mutations);
      ctx.pauseMs = Math.min(MAX_PAUSE_MS, ctx.pauseMs + d.val.ms);
      return undefined;
    default:
      throw invalid(plugin, `unknown decision ${(d as { tag: string }).tag}`);
  }
}
