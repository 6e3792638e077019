/**
 * Request checks on top of Node's strict parser. Node already refuses most malformed
 * framing (CL with TE, bad chunk sizes, obs-fold, bare CR/LF, bad tokens); these cover what
 * it accepts but a proxy must not forward: anything a second parser downstream could read
 * differently (request smuggling) and Host / :authority ambiguity (RFC 9112, RFC 9113).
 */
import type { LimitsConfig } from '../config/types.ts';
import type { ErrorCode } from '../errors.ts';
import type { DownstreamRequest } from '../proxy/exchange.ts';
import { isFramingLookalike } from '../edge/lookalike.ts';

export interface Rejection {
  readonly code: ErrorCode;
  readonly reason: string;
}

// RFC 9110 field-value: VCHAR, obs-text, SP and HTAB; nothing else.
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// uri-host [ ":" port ]: reg-name or IP-literal; no userinfo, no spaces.
const HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?$/;
const DIGITS = /^[0-9]{1,15}$/;
// Request-target characters allowed on the wire (RFC 3986 plus '%'); no CTLs, no spaces.
const TARGET = /^[\x21-\x7e]+$/;

const reject = (reason: string, code: ErrorCode = 'WEIR_ERR_BAD_REQUEST'): Rejection => ({ code, reason });

/** Returns why `req` must be refused, or undefined if it may be forwarded. */
export function checkRequest(req: DownstreamRequest, limits: LimitsConfig): Rejection | undefined {
  const raw = req.rawHeaders;
  // Tell HTTP/2 by the stream, not the version: Node's h1 parser accepts "HTTP/2.0" and
  // HTTP/0.9-style request lines.
  const h2 = (req as { stream?: unknown }).stream !== undefined;
  if (!h2 && req.httpVersionMajor !== 1) return reject(`HTTP/${req.httpVersion} over an HTTP/1 connection`);
  if (h2 && req.httpVersionMajor !== 2) return reject('bad HTTP version');
  if (raw.length / 2 > limits.maxHeaderCount + (h2 ? 4 : 0)) return reject('too many header fields', 'WEIR_ERR_HEADERS_TOO_LARGE');
  const url = req.url ?? '';
  if (url.length + (req.method?.length ?? 0) + 10 > limits.maxRequestLineBytes) return reject('request line too long', 'WEIR_ERR_URI_TOO_LONG');
  if (!TARGET.test(url)) return reject('invalid characters in the request target');
  const method = req.method ?? '';
  if (method === 'CONNECT') {
    // authority-form only (RFC 9112 §3.2.3): host:port, nothing else.
    if (!HOST.test(url) || !/:[0-9]+$/.test(url)) return reject('CONNECT needs host:port');
  } else if (url === '*') {
    if (method !== 'OPTIONS') return reject('asterisk-form is only for OPTIONS');
  } else if (url.charCodeAt(0) !== 47 /* / */) {
    // absolute-form: an http(s) URL with an authority (RFC 9112 §3.2.2)
    if (!/^https?:\/\/[^/?#]/i.test(url)) return reject('invalid request target');
    try {
      const u = new URL(url);
      if (u.username || u.password) return reject('userinfo in the request target');
    } catch {
      return reject('invalid absolute-form target');
    }
  }
  let hosts = 0;
  let host: string | undefined;
  let authority: string | undefined;
  let cls = 0;
  let cl: string | undefined;
  let tes = 0;
  let te: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    if (name.charCodeAt(0) !== 58 /* : */ && !TOKEN.test(name)) return reject('invalid header name');
    if (BAD_VALUE.test(value)) return reject(`control character in header ${name}`);
    if (isFramingLookalike(name)) return reject(`header ${name} reads as a framing header where _ is taken for -`);
    const lower = name.length >= 4 && name.length <= 17 ? name.toLowerCase() : '';
    if (lower === 'host') {
      hosts++;
      host = value;
    } else if (lower === 'content-length') {
      cls++;
      cl = value;
    } else if (lower === 'transfer-encoding') {
      tes++;
      te = value;
    } else if (name === ':authority') authority = value;
  }
  if (hosts > 1) return reject('more than one Host header');
  // RFC 9112 §3.2: HTTP/1.1 needs Host (checked here, not by Node, so the reply is our JSON 400).
  if (!h2 && hosts === 0 && req.httpVersionMinor === 1) return reject('no Host header on HTTP/1.1');
  if (host !== undefined && !HOST.test(host)) return reject('invalid Host header');
  if (cls > 1) return reject('more than one Content-Length');
  if (cl !== undefined && !DIGITS.test(cl)) return reject('invalid Content-Length');
  if (h2) {
    // RFC 9113 §6.5.2: name + value + 32 per field. nghttp2 only advertises the limit.
    let listSize = 0;
    for (let i = 0; i < raw.length; i += 2) listSize += raw[i]!.length + raw[i + 1]!.length + 32;
    if (listSize > limits.http2.maxHeaderListSize) return reject('header list too large', 'WEIR_ERR_HEADERS_TOO_LARGE');
    if (authority !== undefined && !HOST.test(authority)) return reject('invalid :authority');
    // RFC 9113 §8.3.1: Host and :authority must name the same origin.
    if (authority !== undefined && host !== undefined && authority.toLowerCase() !== host.toLowerCase()) return reject('Host differs from :authority');
    if (authority === undefined && host === undefined) return reject('no :authority and no Host');
    return undefined;
  }
  if (tes > 0) {
    if (req.httpVersionMinor === 0) return reject('Transfer-Encoding on HTTP/1.0');
    // Only exactly "chunked": anything else is read differently by different parsers.
    if (tes > 1 || te!.trim().toLowerCase() !== 'chunked') return reject('Transfer-Encoding other than chunked');
    if (cls > 0) return reject('Content-Length together with Transfer-Encoding');
  }
  return undefined;
}

/** True if the upgrade request asks for WebSocket (the only upgrade Weir forwards). */
export function isWebSocketUpgrade(req: DownstreamRequest): boolean {
  const up = req.headers['upgrade'];
  return typeof up === 'string' && up.trim().toLowerCase() === 'websocket' && req.method === 'GET';
}
