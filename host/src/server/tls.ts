/**
 * Server certificates: the default one plus SNI entries (exact and `*.example.com`
 * wildcards). Contexts are rebuilt on reload; an invalid new certificate throws and the
 * old contexts stay in use.
 */
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { TlsConfig } from '../config/types.ts';

interface ContextSet {
  forName(name: string): tls.SecureContext;
}

function build(cfg: TlsConfig): ContextSet {
  const ca = cfg.caFile ? readFileSync(cfg.caFile) : undefined;
  const make = (certFile: string, keyFile: string): tls.SecureContext =>
    tls.createSecureContext({ cert: readFileSync(certFile), key: readFileSync(keyFile), ...(ca ? { ca } : {}), minVersion: cfg.minVersion as tls.SecureVersion });
  const def = make(cfg.certFile, cfg.keyFile);
  const exact = new Map<string, tls.SecureContext>();
  const wild = new Map<string, tls.SecureContext>();
  for (const s of cfg.sni) {
    const c = make(s.certFile, s.keyFile);
    for (const h of s.hostnames) {
      const name = h.toLowerCase();
      if (name.startsWith('*.')) wild.set(name.slice(2), c);
      else exact.set(name, c);
    }
  }
  return {
    forName(name: string) {
      const n = name.toLowerCase();
      const e = exact.get(n);
      if (e) return e;
      const dot = n.indexOf('.');
      if (dot !== -1) {
        const w = wild.get(n.slice(dot + 1));
        if (w) return w;
      }
      return def;
    },
  };
}

export function createSecureContexts(cfg: TlsConfig): { current: ContextSet; reload(): void } {
  const holder = {
    current: build(cfg),
    reload() {
      holder.current = build(cfg);
    },
  };
  return holder;
}
