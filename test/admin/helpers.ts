/** An in-process Weir with the admin API on a loopback port, and a client for it. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

export const TOKEN = 'full-access-token';
export const RO_TOKEN = 'read-only-token';

export interface AdminClient {
  readonly weir: Weir;
  readonly file: string;
  readonly dir: string;
  readonly base: string;
  readonly proxy: string;
  readonly auditFile: string;
  call(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; json: any; headers: Headers }>;
  /** The audit log's JSON lines so far. */
  audit(): Array<Record<string, any>>;
  close(): Promise<void>;
}

/** `extra` goes into the `admin-api` block; `top` at the top level. */
export function adminConfig(originPorts: readonly number[], opts: { admin?: string; top?: string; auditFile: string; upstreams?: string; routes?: string }): string {
  return `// the test config
schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; } }
routes {
${opts.routes ?? ''}
    route "default" {
        matches { path-prefix "/" }
        upstream "origin"
    }
}
upstreams {
    // the origin pool
    upstream "origin" {
${originPorts.map((p, i) => `        target "127.0.0.1:${p}" weight=1${i === 0 ? ' // first' : ''}`).join('\n')}
    }
${opts.upstreams ?? ''}
}
observability { logging { audit-log "${opts.auditFile}"; } }
system { graceful-shutdown-timeout-secs 2 }
admin-api {
    address "127.0.0.1:0"
    auth {
        type "bearer"
        token "${TOKEN}"
        read-only-token "${RO_TOKEN}"
    }
${opts.admin ?? ''}
}
${opts.top ?? ''}
`;
}

export async function startAdmin(originPorts: readonly number[], opts: { admin?: string; top?: string; upstreams?: string; routes?: string } = {}): Promise<AdminClient> {
  const dir = tmpDir('weir-admin-');
  const auditFile = join(dir, 'audit.log');
  const { weir, file, url } = await startWeirWith(adminConfig(originPorts, { ...opts, auditFile }));
  const a = weir.adminAddress()!;
  const base = `http://127.0.0.1:${a.port}`;
  return {
    weir,
    file,
    dir,
    base,
    proxy: url,
    auditFile,
    async call(method, path, body, token = TOKEN) {
      const res = await fetch(base + path, {
        method,
        headers: { ...(token !== null ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      return { status: res.status, json, headers: res.headers };
    },
    audit() {
      let text = '';
      try {
        text = readFileSync(auditFile, 'utf8');
      } catch {
        return [];
      }
      return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
    },
    close: () => weir.close(),
  };
}

/** Polls `f` until it returns a truthy value (bounded). */
export async function eventually<T>(f: () => T | Promise<T>, what: string, ms = 10_000): Promise<NonNullable<T>> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
