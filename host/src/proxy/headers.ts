/**
 * Header handling for forwarding (RFC 9110 §7.6.1): hop-by-hop headers stay on their hop.
 */
import type { HeaderMap } from '../pipeline/phases.ts';

/** Always hop-by-hop, whatever Connection says. */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-connection', 'proxy-authenticate', 'proxy-authorization',
  // HTTP/2 pseudo-headers never go into an HTTP/1 header block
  ':method', ':path', ':scheme', ':authority', ':status', ':protocol',
  'http2-settings',
]);

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name);
}

/** Builds a header map from Node's flat rawHeaders (keeps every repeated field, lowercases names). */
export function headersFromRaw(raw: readonly string[]): HeaderMap {
  const out: HeaderMap = Object.create(null);
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    const prev = out[name];
    if (prev === undefined) out[name] = value;
    else if (typeof prev === 'string') out[name] = [prev, value];
    else prev.push(value);
  }
  return out;
}

function connectionTokens(headers: HeaderMap): Set<string> | undefined {
  const conn = headers['connection'];
  if (conn === undefined) return undefined;
  // The usual values name no other header.
  if (conn === 'keep-alive' || conn === 'close' || conn === 'Keep-Alive' || conn === 'Close') return undefined;
  const set = new Set<string>();
  for (const v of Array.isArray(conn) ? conn : [conn]) {
    for (const tok of v.split(',')) {
      const t = tok.trim().toLowerCase();
      if (t) set.add(t);
    }
  }
  return set;
}

/**
 * Copies `headers` without hop-by-hop fields (the fixed list, and every field Connection
 * names) into a new map. Returns the copy; the input is left alone.
 */
export function stripHopByHop(headers: HeaderMap): HeaderMap {
  const named = connectionTokens(headers);
  const out: HeaderMap = Object.create(null);
  for (const name in headers) {
    if (HOP_BY_HOP.has(name)) continue;
    if (named !== undefined && named.has(name)) continue;
    const v = headers[name];
    if (v !== undefined) out[name] = v;
  }
  return out;
}

export function firstHeader(headers: HeaderMap, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Appends a value to a header, keeping earlier values (X-Forwarded-For, Via). */
export function appendHeader(headers: HeaderMap, name: string, value: string): void {
  const prev = headers[name];
  if (prev === undefined) headers[name] = value;
  else if (typeof prev === 'string') headers[name] = `${prev}, ${value}`;
  else headers[name] = `${prev.join(', ')}, ${value}`;
}
