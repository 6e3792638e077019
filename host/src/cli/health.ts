/**
 * `weir health URL | --config FILE`: asks a running proxy whether it is well, for scripts,
 * container health checks and deploy gates. Well = ready (not draining, every proxy thread
 * on the same config generation) and no unhealthy target. Exit 0 well, 1 not well, 2 it
 * could not be asked (unreachable, refused credential, not a Weir).
 *
 * URL: the admin API's base (`http://127.0.0.1:9901`; GET /api/v1/status with the token
 * from `--token` or $ADMIN_API_TOKEN), or any URL of a `builtin-handler "status"` route.
 * --config: the admin-api address and token of that config file; an mTLS admin listener
 * takes --cert and --key (a client certificate its ca-file signed).
 */
import { readFileSync } from 'node:fs';
// undici's own fetch: Node's global fetch bundles another undici, which rejects this Agent.
import { Agent, fetch } from 'undici';
import { loadConfig, formatDiagnostics } from '../config/load.ts';
import { adminSettings } from '../admin/settings.ts';

export interface HealthOptions {
  readonly config?: string;
  readonly token?: string;
  /** A CA bundle for an HTTPS admin listener with a private CA. */
  readonly ca?: string;
  /** A client certificate and key for an admin listener with `auth type "mtls"`. */
  readonly cert?: string;
  readonly key?: string;
  readonly timeout?: string;
  readonly json?: boolean;
}

export interface HealthReport {
  readonly url: string;
  readonly ready: boolean;
  readonly generation: number | undefined;
  readonly unhealthy: ReadonlyArray<{ upstream: string; address: string }>;
}

class Unaskable extends Error {}

/** Reads one status answer: the admin API's `/api/v1/status` or a status route's body. */
export function judge(url: string, body: unknown): HealthReport {
  const o = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (Array.isArray(o['unhealthyTargets'])) {
    return {
      url,
      ready: o['ready'] === true,
      generation: typeof o['generation'] === 'number' ? o['generation'] : undefined,
      unhealthy: (o['unhealthyTargets'] as Array<{ upstream: string; address: string }>).map((t) => ({ upstream: String(t.upstream), address: String(t.address) })),
    };
  }
  if (Array.isArray(o['upstreams']) && typeof o['generation'] === 'number') {
    const unhealthy: Array<{ upstream: string; address: string }> = [];
    for (const u of o['upstreams'] as Array<{ name: string; targets: Array<{ address: string; healthy: boolean }> }>) {
      for (const t of u.targets ?? []) if (t.healthy === false) unhealthy.push({ upstream: u.name, address: t.address });
    }
    return { url, ready: o['draining'] !== true, generation: o['generation'], unhealthy };
  }
  throw new Unaskable(`${url} did not answer with a Weir status`);
}

async function target(url: string | undefined, opts: HealthOptions): Promise<{ url: string; token: string | undefined; ca: string | undefined }> {
  if (opts.config !== undefined) {
    const res = await loadConfig(opts.config);
    if (!res.ok) throw new Unaskable(`invalid configuration:\n${formatDiagnostics(res.diagnostics)}`);
    const s = adminSettings(res.config.adminApi);
    if (!s) throw new Unaskable(`${opts.config} has no admin-api block: give the URL of a status route instead`);
    if (s.auth.type === 'mtls' && (opts.cert === undefined || opts.key === undefined)) throw new Unaskable('the admin API asks for a client certificate (auth type "mtls"): give --cert FILE and --key FILE');
    const host = ['0.0.0.0', '::'].includes(s.host) ? '127.0.0.1' : s.host.includes(':') ? `[${s.host}]` : s.host;
    return { url: `${s.tls ? 'https' : 'http'}://${host}:${s.port}/api/v1/status`, token: opts.token ?? s.auth.token, ca: opts.ca ?? s.tls?.caFile };
  }
  if (url === undefined) throw new Unaskable('give the URL of the admin API (or of a status route), or --config FILE');
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Unaskable(`not a URL: ${url}`);
  }
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/api/v1/status';
  return { url: u.toString(), token: opts.token ?? process.env['ADMIN_API_TOKEN'], ca: opts.ca };
}

export async function health(url: string | undefined, opts: HealthOptions): Promise<number> {
  let report: HealthReport;
  try {
    const t = await target(url, opts);
    const ms = Number(opts.timeout ?? 5000);
    const tls = { ...(t.ca ? { ca: readFileSync(t.ca) } : {}), ...(opts.cert && opts.key ? { cert: readFileSync(opts.cert), key: readFileSync(opts.key) } : {}) };
    const dispatcher = Object.keys(tls).length ? new Agent({ connect: tls }) : undefined;
    let res: Awaited<ReturnType<typeof fetch>>;
    try {
      res = await fetch(t.url, {
        headers: t.token ? { authorization: `Bearer ${t.token}` } : {},
        signal: AbortSignal.timeout(Number.isFinite(ms) && ms > 0 ? ms : 5000),
        ...(dispatcher ? { dispatcher } : {}),
      });
    } catch (err) {
      throw new Unaskable(`${t.url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
    }
    const text = await res.text();
    if (res.status === 401 || res.status === 403) throw new Unaskable(`${t.url}: ${res.status}: the token was refused (--token or $ADMIN_API_TOKEN)`);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Unaskable(`${t.url}: HTTP ${res.status}, not JSON`);
    }
    // A draining proxy's status route answers 503 with an error body: not ready.
    if (res.status === 503) report = { url: t.url, ready: false, generation: undefined, unhealthy: [] };
    else report = judge(t.url, body);
  } catch (err) {
    if (!(err instanceof Unaskable)) throw err;
    process.stderr.write(`weir health: ${err.message}\n`);
    return 2;
  }
  const well = report.ready && report.unhealthy.length === 0;
  if (opts.json) process.stdout.write(`${JSON.stringify({ well, ...report })}\n`);
  else {
    const lines = [`${well ? 'well' : 'NOT WELL'}: ${report.url}`, `ready: ${report.ready ? 'yes' : 'no'}`, `config generation: ${report.generation ?? 'unknown'}`];
    lines.push(report.unhealthy.length ? `unhealthy targets: ${report.unhealthy.map((t) => `${t.upstream}/${t.address}`).join(', ')}` : 'unhealthy targets: none');
    process.stdout.write(`${lines.join('\n')}\n`);
  }
  return well ? 0 : 1;
}
