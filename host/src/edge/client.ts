/**
 * The client address: one function decides it for everything that asks (plugins' client
 * address, so rate-limit keys and geo lookups; the access log; the X-Forwarded-For hop sent
 * upstream).
 *
 * Model (nginx's `set_real_ip_from` with `real_ip_recursive on`): forwarding headers are
 * believed only when the socket peer is in the listener's `trusted-proxies`. Then the hops are
 * read right to left, from the PROXY protocol source (if the connection had one) back through
 * `Forwarded` `for=` (RFC 7239; used instead of X-Forwarded-For when present) or
 * X-Forwarded-For, and the first address that is not itself a trusted proxy is the client. A
 * hop that is not an IP address (`unknown`, an obfuscated name, garbage) ends the walk: the
 * hop right of it, a proxy we trust, is the client then. From an untrusted peer the headers are
 * dropped, so nothing a client writes there reaches plugins or the upstream.
 */
import net from 'node:net';
import type { HeaderMap } from '../pipeline/phases.ts';
import { parseCidr } from '../config/values.ts';

/** A set of CIDR ranges (IPv4 and IPv6; IPv4-mapped IPv6 addresses match IPv4 ranges). */
export class TrustedProxies {
  private readonly list = new net.BlockList();
  readonly cidrs: readonly string[];

  constructor(cidrs: readonly string[]) {
    this.cidrs = cidrs;
    for (const c of cidrs) {
      const p = parseCidr(c);
      if (p === undefined) throw new Error(`invalid CIDR ${c}`);
      this.list.addSubnet(p.address, p.prefix, p.family);
    }
  }

  /** True when `address` (an IP, any spelling Node accepts) is in one of the ranges. */
  has(address: string): boolean {
    const family = net.isIP(address);
    if (family === 0) return false;
    return this.list.check(address, family === 4 ? 'ipv4' : 'ipv6');
  }
}

/** An address a connection came from: the socket peer, or the source of a PROXY header. */
export interface Hop {
  readonly address: string;
  readonly port: number;
}

export interface ClientAddress {
  readonly address: string;
  /** The port of that hop when known (socket or PROXY source), else 0. */
  readonly port: number;
  /** The hop Weir received the request from, appended to X-Forwarded-For upstream. */
  readonly forwardHop: string;
  /** The socket peer is a trusted proxy: its forwarding headers were used and are forwarded. */
  readonly trusted: boolean;
}

/** `::ffff:10.0.0.1` → `10.0.0.1`: one spelling per client for keys and logs. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** One `for=` value of RFC 7239 → an address, or undefined (unknown, obfuscated, bad). */
function forwardedFor(v: string): string | undefined {
  let s = v.trim();
  if (s.startsWith('"') && s.endsWith('"') && s.length >= 2) s = s.slice(1, -1);
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end === -1) return undefined;
    s = s.slice(1, end);
  } else if (s.indexOf(':') !== -1 && s.indexOf(':') === s.lastIndexOf(':')) {
    s = s.slice(0, s.indexOf(':')); // IPv4 with a port
  }
  return net.isIP(s) !== 0 ? s : undefined;
}

function values(headers: HeaderMap, name: string): string[] {
  const v = headers[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** The hops of the Forwarded header, left to right; undefined entries did not parse. */
function forwardedHops(headers: HeaderMap): Array<string | undefined> | undefined {
  const vals = values(headers, 'forwarded');
  if (vals.length === 0) return undefined;
  const out: Array<string | undefined> = [];
  for (const v of vals) {
    for (const element of v.split(',')) {
      let hop: string | undefined;
      let found = false;
      for (const pair of element.split(';')) {
        const eq = pair.indexOf('=');
        if (eq !== -1 && pair.slice(0, eq).trim().toLowerCase() === 'for') {
          found = true;
          hop = forwardedFor(pair.slice(eq + 1));
        }
      }
      // An element without for= says nothing about the client: a broken chain.
      out.push(found ? hop : undefined);
    }
  }
  return out;
}

function xffHops(headers: HeaderMap): Array<string | undefined> {
  const out: Array<string | undefined> = [];
  for (const v of values(headers, 'x-forwarded-for')) {
    for (const part of v.split(',')) {
      const s = part.trim();
      out.push(net.isIP(s) !== 0 ? s : undefined);
    }
  }
  return out;
}

/**
 * The client address of a request that arrived from `peer` (the socket) with `proxied` (the
 * PROXY protocol source, when the connection had a header from a trusted peer).
 * Removes X-Forwarded-For and Forwarded from `headers` when they cannot be trusted.
 */
export function clientAddress(peer: Hop, proxied: Hop | undefined, headers: HeaderMap, trust: TrustedProxies | undefined): ClientAddress {
  const socketAddr = plain(peer.address);
  const trusted = trust !== undefined && trust.has(socketAddr);
  if (!trusted) {
    delete headers['x-forwarded-for'];
    delete headers['forwarded'];
    return { address: socketAddr, port: peer.port, forwardHop: socketAddr, trusted: false };
  }
  // The nearest hop: the PROXY source, else the trusted peer itself.
  const near = proxied ? { address: plain(proxied.address), port: proxied.port } : { address: socketAddr, port: peer.port };
  if (!trust.has(near.address)) return { address: near.address, port: near.port, forwardHop: near.address, trusted: true };
  const hops = forwardedHops(headers) ?? xffHops(headers);
  let client = near.address;
  for (let i = hops.length - 1; i >= 0; i--) {
    const h = hops[i];
    if (h === undefined) break;
    client = plain(h);
    if (!trust.has(client)) break;
  }
  return { address: client, port: client === near.address ? near.port : 0, forwardHop: near.address, trusted: true };
}
