/**
 * PROXY protocol (HAProxy's v1 text and v2 binary header) on a listener: read before any HTTP
 * or TLS byte, only from a peer in `trusted-proxies`. From a trusted peer the header is
 * required; a missing, malformed or (from an untrusted peer) any header closes the connection
 * (counted as WEIR_ERR_PROXY_PROTOCOL). The source address it carries becomes the nearest hop
 * of the client-address walk (client.ts).
 *
 * The proxy-protocol-js package decodes the fields. It parses a complete buffer, so the
 * framing (where the header ends, size limits, the wait for more bytes) and the checks it
 * leaves out (addresses are IPs of the stated family, ports in range, `PROXY UNKNOWN`) are here.
 */
import net from 'node:net';
import { Command, IPv4ProxyAddress, IPv6ProxyAddress, V1ProxyProtocol, V2ProxyProtocol } from 'proxy-protocol-js';
import type { Hop, TrustedProxies } from './client.ts';

export type ProxyProtocolMode = 'off' | 'v1' | 'v2' | 'any';

const V1_SIG = Buffer.from('PROXY ');
const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** v1: "PROXY TCP6 <39> <39> <5> <5>\r\n" is at most 107 bytes (the spec's bound). */
const V1_MAX = 107;
/** v2: addresses plus TLVs; 16 + 216 (unix) leaves room for ordinary TLVs. */
const V2_MAX = 16 + 1024;

const kProxied = Symbol.for('weir.proxied');

/** What a connection's PROXY header said: the real socket peer and the source it names. */
export interface Proxied {
  readonly peer: Hop;
  /** undefined: LOCAL, UNKNOWN or a non-IP family; the peer itself is the hop then. */
  readonly source: Hop | undefined;
}
type WithProxied = { [kProxied]?: Proxied; stream?: WithProxied; _handle?: { _parentWrap?: WithProxied } };

/**
 * The PROXY header recorded for a request's socket. The record is on the raw socket (h1) or
 * on the Duplex it was handed over in; Node wraps such a Duplex in a JSStreamSocket (`stream`:
 * h2c sessions), under a TLS socket as its handle's `_parentWrap` (TLS). The TLS test in
 * test/edge/trust.test.ts breaks if Node moves these.
 */
export function proxiedOf(socket: unknown): Proxied | undefined {
  const s = socket as WithProxied | undefined;
  if (s === undefined) return undefined;
  return s[kProxied] ?? s.stream?.[kProxied] ?? s._handle?._parentWrap?.stream?.[kProxied];
}

/** Copies the PROXY record of `from` to a stream that wraps it (h2c and TLS hand-overs). */
export function carryProxied(from: object, to: object): void {
  const p = (from as WithProxied)[kProxied];
  if (p) (to as WithProxied)[kProxied] = p;
}

/** True while `buf` could still be the start of `sig`. */
function couldBe(buf: Buffer, sig: Buffer): boolean {
  const n = Math.min(buf.length, sig.length);
  return buf.subarray(0, n).equals(sig.subarray(0, n));
}

type Parse = { done: false } | { done: true; error: string } | { done: true; hop: Hop | undefined; used: number };

const port = (p: number): boolean => Number.isInteger(p) && p >= 0 && p <= 65535;

function parseV1(buf: Buffer): Parse {
  const end = buf.indexOf('\r\n');
  if (end === -1) return buf.length >= V1_MAX ? { done: true, error: 'v1 header without CRLF in 107 bytes' } : { done: false };
  if (end + 2 > V1_MAX) return { done: true, error: 'v1 header longer than 107 bytes' };
  const line = buf.toString('latin1', 0, end + 2);
  if (line.startsWith('PROXY UNKNOWN')) return { done: true, hop: undefined, used: end + 2 };
  let p: V1ProxyProtocol;
  try {
    p = V1ProxyProtocol.parse(line);
  } catch {
    return { done: true, error: 'malformed v1 header' };
  }
  const family = String(p.inetProtocol) === 'TCP4' ? 4 : String(p.inetProtocol) === 'TCP6' ? 6 : 0;
  if (family === 0 || net.isIP(p.source.ipAddress) !== family || net.isIP(p.destination.ipAddress) !== family) return { done: true, error: 'v1 header with a bad address' };
  if (!port(p.source.port) || !port(p.destination.port)) return { done: true, error: 'v1 header with a bad port' };
  return { done: true, hop: { address: p.source.ipAddress, port: p.source.port }, used: end + 2 };
}

function v6(bytes: readonly number[]): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  // Node prints the canonical (compressed) form.
  return new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

function parseV2(buf: Buffer): Parse {
  if (buf.length < 16) return { done: false };
  if ((buf[12]! & 0xf0) !== 0x20) return { done: true, error: 'v2 header with a bad version' };
  const total = 16 + buf.readUInt16BE(14);
  if (total > V2_MAX) return { done: true, error: 'v2 header too long' };
  if (buf.length < total) return { done: false };
  let p: V2ProxyProtocol;
  try {
    p = V2ProxyProtocol.parse(new Uint8Array(buf.subarray(0, total)));
  } catch {
    return { done: true, error: 'malformed v2 header' };
  }
  // LOCAL: the proxy's own connection (e.g. a health check); unix/unspecified: no IP.
  if (p.command === Command.LOCAL) return { done: true, hop: undefined, used: total };
  const a = p.proxyAddress;
  if (a instanceof IPv4ProxyAddress) return { done: true, hop: { address: a.sourceAddress.address.join('.'), port: a.sourcePort }, used: total };
  if (a instanceof IPv6ProxyAddress) return { done: true, hop: { address: v6(a.sourceAddress.address), port: a.sourcePort }, used: total };
  return { done: true, hop: undefined, used: total };
}

/**
 * Reads the PROXY header of a new connection (or checks that an untrusted peer sent none),
 * then calls `ready` with the bytes read after it, for the caller to hand over. On any failure
 * the socket is destroyed and `refused(reason)` is called instead.
 */
export function acceptProxyProtocol(socket: net.Socket, mode: Exclude<ProxyProtocolMode, 'off'>, trust: TrustedProxies | undefined, timeoutMs: number, ready: (rest: Buffer) => void, refused: (reason: string) => void): void {
  const peer: Hop = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
  const trusted = trust !== undefined && trust.has(peer.address.startsWith('::ffff:') ? peer.address.slice(7) : peer.address);
  let buf: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => fail('no PROXY header in time'), timeoutMs);
  const finish = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
  };
  const fail = (reason: string): void => {
    finish();
    socket.destroy();
    refused(reason);
  };
  const handOver = (rest: Buffer): void => {
    finish();
    socket.pause();
    ready(rest);
  };
  const onError = (): void => fail('connection error before the PROXY header');
  const onData = (chunk: Buffer): void => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    if (!trusted) {
      // An untrusted peer speaks HTTP (or TLS) directly; a PROXY header from it is refused.
      const maybe1 = couldBe(buf, V1_SIG);
      const maybe2 = couldBe(buf, V2_SIG);
      if ((maybe1 && buf.length < V1_SIG.length) || (maybe2 && buf.length < V2_SIG.length)) return;
      if (maybe1 || maybe2) return fail('PROXY header from an untrusted peer');
      return handOver(buf);
    }
    const v1 = mode !== 'v2' && couldBe(buf, V1_SIG);
    const v2 = mode !== 'v1' && couldBe(buf, V2_SIG);
    if (!v1 && !v2) return fail(`a trusted peer sent no ${mode === 'any' ? '' : `${mode} `}PROXY header`);
    if ((v1 && buf.length < V1_SIG.length) || (v2 && buf.length < V2_SIG.length)) return;
    const r = v2 ? parseV2(buf) : parseV1(buf);
    if (!r.done) return;
    if ('error' in r) return fail(r.error);
    (socket as WithProxied)[kProxied] = { peer, source: r.hop };
    handOver(buf.subarray(r.used));
  };
  socket.on('data', onData);
  socket.on('error', onError);
}
