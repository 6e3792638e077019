/** Parsing of the value formats the dialect shares: sizes, addresses, `${ENV}` strings. */
import net from 'node:net';
import { closest, distance } from 'fastest-levenshtein';

const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1,
  k: 1024, kb: 1000, kib: 1024,
  m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
};

/** 1048576, "1048576", "16MiB", "10MB", "512k" → bytes; undefined if not a size. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  if (!m) return undefined;
  const unit = SIZE_UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return undefined;
  return Math.round(Number(m[1]) * unit);
}

export interface ParsedAddress {
  readonly host: string;
  readonly port: number;
}

/** "host:port", "1.2.3.4:80", "[::1]:8080"; port 0 allowed (the caller decides if it makes sense). */
export function parseAddress(value: string): ParsedAddress | undefined {
  let host: string;
  let portText: string;
  if (value.startsWith('[')) {
    const end = value.indexOf(']');
    if (end < 0 || value[end + 1] !== ':') return undefined;
    host = value.slice(1, end);
    portText = value.slice(end + 2);
    if (!host.includes(':')) return undefined;
  } else {
    const at = value.lastIndexOf(':');
    if (at <= 0) return undefined;
    host = value.slice(0, at);
    portText = value.slice(at + 1);
    // A bare IPv6 address needs brackets, or the port is ambiguous.
    if (host.includes(':')) return undefined;
    if (!/^[A-Za-z0-9._-]+$/.test(host)) return undefined;
  }
  if (!/^\d{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port > 65535) return undefined;
  return { host, port };
}

/**
 * Expands `${NAME}` and `${NAME:-fallback}` from env. Returns the names that were missing
 * (those are left as written).
 */
export function expandEnv(text: string, env: Readonly<Record<string, string | undefined>>): { value: string; missing: string[] } {
  const missing: string[] = [];
  const value = text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, name: string, fallback: string | undefined) => {
    const v = env[name];
    if (v !== undefined) return v;
    if (fallback !== undefined) return fallback;
    missing.push(name);
    return whole;
  });
  return { value, missing };
}

/** "did you mean `x`?" when a candidate is close enough to be a plausible typo. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.length === 0) return undefined;
  const best = closest(word, candidates as string[]);
  const d = distance(word, best);
  if (d <= Math.max(2, Math.floor(word.length / 3))) return `did you mean \`${best}\`?`;
  return undefined;
}

/** "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128); undefined if not a CIDR. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const slash = text.indexOf('/');
  const address = slash === -1 ? text : text.slice(0, slash);
  const family = net.isIP(address);
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) return undefined;
    prefix = Number(p);
  }
  return { address, prefix, family: family === 4 ? 'ipv4' : 'ipv6' };
}
