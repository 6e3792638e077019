/**
 * Server certificates: the default one plus SNI entries (exact and `*.example.com`
 * wildcards). Contexts are rebuilt on reload; an invalid new certificate throws and the
 * old contexts stay in use. Handshakes already done keep their context.
 */
import tls from 'node:tls';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import type { TlsConfig } from '../config/types.ts';

interface ContextSet {
  forName(name: string): tls.SecureContext;
  /** The default certificate as options (for `server.setSecureContext`). */
  readonly options: tls.SecureContextOptions;
}

function build(cfg: TlsConfig): ContextSet {
  const ca = cfg.caFile ? readFileSync(cfg.caFile) : undefined;
  const opts = (certFile: string, keyFile: string): tls.SecureContextOptions => ({
    cert: readFileSync(certFile),
    key: readFileSync(keyFile),
    ...(ca ? { ca } : {}),
    minVersion: cfg.minVersion as tls.SecureVersion,
    maxVersion: cfg.maxVersion as tls.SecureVersion,
    ...(cfg.ciphers ? { ciphers: cfg.ciphers } : {}),
  });
  // createSecureContext checks that the key matches the certificate and both parse.
  const defOpts = opts(cfg.certFile, cfg.keyFile);
  const def = tls.createSecureContext(defOpts);
  const exact = new Map<string, tls.SecureContext>();
  const wild = new Map<string, tls.SecureContext>();
  for (const s of cfg.sni) {
    const c = tls.createSecureContext(opts(s.certFile, s.keyFile));
    for (const h of s.hostnames) {
      const name = h.toLowerCase();
      if (name.startsWith('*.')) wild.set(name.slice(2), c);
      else exact.set(name, c);
    }
  }
  return {
    options: defOpts,
    forName(name: string) {
      const n = name.toLowerCase();
      const e = exact.get(n);
      if (e) return e;
      // A wildcard covers exactly one label (RFC 6125 §6.4.3).
      const dot = n.indexOf('.');
      if (dot !== -1) {
        const w = wild.get(n.slice(dot + 1));
        if (w) return w;
      }
      return def;
    },
  };
}

export interface SecureContexts {
  current: ContextSet;
  /** Rebuilds every context; throws (keeping the old ones) if a file is missing or invalid. */
  reload(): void;
  /** Options for the default certificate. */
  serverOptions(): tls.SecureContextOptions;
  /** Calls `onChange` (debounced) when a certificate or key file changes; returns a stop function. */
  watch(onChange: () => void): () => void;
}

export function createSecureContexts(cfg: TlsConfig): SecureContexts {
  const holder: SecureContexts = {
    current: build(cfg),
    reload() {
      holder.current = build(cfg);
    },
    serverOptions() {
      return holder.current.options;
    },
    watch(onChange) {
      const files = [cfg.certFile, cfg.keyFile, ...(cfg.caFile ? [cfg.caFile] : []), ...cfg.sni.flatMap((s) => [s.certFile, s.keyFile])];
      const names = new Set(files.map((f) => basename(f)));
      const watchers: FSWatcher[] = [];
      let timer: NodeJS.Timeout | undefined;
      // Directories, not files: renames (atomic replace, cert-manager symlink swaps) end a file watch.
      for (const dir of new Set(files.map((f) => dirname(f)))) {
        try {
          const w = watch(dir, (_e, name) => {
            if (name && !names.has(name) && !name.startsWith('..')) return;
            clearTimeout(timer);
            // Writers replace cert and key one after the other: wait for both.
            timer = setTimeout(onChange, 200);
          });
          w.unref();
          w.on('error', () => {}); // the directory went away: SIGHUP still reloads
          watchers.push(w);
        } catch {
          // an unwatchable directory: SIGHUP still reloads
        }
      }
      return () => {
        clearTimeout(timer);
        for (const w of watchers) w.close();
      };
    },
  };
  return holder;
}
