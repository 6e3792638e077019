/**
 * The admin listener: `/api/v1/…` (api.ts) and the UI at `/ui/` (ui.ts), on the
 * `admin-api { address }` of its own, over HTTP or HTTPS (`tls`, client certificates for
 * `auth type "mtls"`). Every API call is authenticated, answered in JSON and audited.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { errorStatus, errorMessage } from '../error-body.ts';
import { WeirError, isWeirError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import { matchRoute, type AdminRoute } from './api.ts';
import type { AdminHost } from './host.ts';
import type { AdminSettings } from './settings.ts';
import { hookStats, routeStats, sample, type Sample } from './stats.ts';
import { UI_FILES } from './ui.ts';

/** Largest request body the API reads. */
const MAX_BODY = 1024 * 1024;
/** How often the event stream sends `stats`. */
const EVENT_MS = 1000;

export interface AdminServer {
  readonly address: { host: string; port: number };
  /** Who serves: the same socket keeps serving with new settings (persist, tokens, drain timeout). */
  readonly key: string;
  update(settings: AdminSettings): void;
  /** Stops accepting; calls in flight get `graceMs` to finish (a reload the API itself asked for answers before its old listener goes). */
  close(graceMs?: number): Promise<void>;
}

interface Caller {
  readonly who: string;
  readonly access: 'full' | 'read-only' | 'none';
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Constant-time equality of a presented token and a configured one (hashes have equal length). */
function sameToken(presented: string, expected: string | undefined): boolean {
  return expected !== undefined && timingSafeEqual(digest(presented), digest(expected));
}

function authenticate(req: http.IncomingMessage, s: AdminSettings): Caller {
  if (s.auth.type === 'mtls') {
    const sock = req.socket as TLSSocket;
    if (!sock.authorized) return { who: 'anonymous', access: 'none' };
    const cn = String(sock.getPeerCertificate()?.subject?.CN ?? '');
    return { who: `cert:${cn}`, access: s.auth.readOnlySubjects.includes(cn) ? 'read-only' : 'full' };
  }
  const h = req.headers.authorization ?? '';
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (!m) return { who: 'anonymous', access: 'none' };
  const token = m[1]!;
  const who = `token:${digest(token).toString('hex').slice(0, 8)}`;
  // Both compared every time, so the answer's timing does not tell which one matched.
  const full = sameToken(token, s.auth.token);
  const ro = sameToken(token, s.auth.readOnlyToken);
  return full ? { who, access: 'full' } : ro ? { who, access: 'read-only' } : { who: 'anonymous', access: 'none' };
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers }).end(text);
}

function errorJson(code: ErrorCode, detail?: unknown): { status: number; body: unknown } {
  return { status: errorStatus(code), body: { error: { code, status: errorStatus(code), message: errorMessage(code), ...(detail !== undefined ? { detail } : {}) } } };
}

function readBody(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) {
        reject(new WeirError('WEIR_ERR_ADMIN_BAD_REQUEST', `the body is larger than ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim() === '') return resolve(undefined);
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new WeirError('WEIR_ERR_ADMIN_BAD_REQUEST', `the body is not JSON: ${(err as Error).message}`));
      }
    });
  });
}

/** Binds the admin listener; a bind failure is WEIR_ERR_LISTEN with the address. */
export async function startAdminServer(initial: AdminSettings, host: AdminHost, logger: Logger): Promise<AdminServer> {
  let settings = initial;
  const events = new EventStream(host, logger);
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    void serve(req, res).catch((err: Error) => {
      logger.error({ code: 'WEIR_ERR_INTERNAL', err: err.stack ?? err.message }, 'admin API call failed');
      if (!res.headersSent) sendJson(res, 500, errorJson('WEIR_ERR_INTERNAL').body);
      else res.destroy();
    });
  };
  const serve = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://admin');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    if (path === '/' || path === '/ui') {
      res.writeHead(302, { location: '/ui/' }).end();
      return;
    }
    if (path.startsWith('/ui/')) {
      const f = UI_FILES[path.slice(4) || 'index.html'];
      if (!f || (method !== 'GET' && method !== 'HEAD')) return sendJson(res, 404, errorJson('WEIR_ERR_ADMIN_NOT_FOUND').body);
      // The page carries no data: every number comes from the authenticated API.
      res.writeHead(200, { 'content-type': f.type, 'cache-control': 'no-cache', 'content-security-policy': "default-src 'self'; style-src 'self'; script-src 'self'", 'x-content-type-options': 'nosniff' });
      res.end(method === 'HEAD' ? undefined : f.body);
      return;
    }
    const s = settings;
    const caller = authenticate(req, s);
    const audit = (status: number, code?: string, change?: Readonly<Record<string, unknown>>): void =>
      host.audit.admin({ who: caller.who, access: caller.access, remote: req.socket.remoteAddress ?? '', method, path, status, ...(code ? { code } : {}), ...(change ? { change } : {}) });
    const fail = (code: ErrorCode, detail?: unknown, headers: Record<string, string> = {}): void => {
      const e = errorJson(code, detail);
      audit(e.status, code);
      sendJson(res, e.status, e.body, headers);
    };
    if (caller.access === 'none') return fail('WEIR_ERR_ADMIN_UNAUTHORIZED', undefined, { 'www-authenticate': s.auth.type === 'bearer' ? 'Bearer realm="weir-admin"' : 'Mutual realm="weir-admin"' });
    const found = matchRoute(method, path);
    if (!found) return fail('WEIR_ERR_ADMIN_NOT_FOUND', { path });
    if ('allowed' in found) {
      const e = errorJson('WEIR_ERR_METHOD_NOT_ALLOWED');
      audit(e.status, 'WEIR_ERR_METHOD_NOT_ALLOWED');
      return sendJson(res, e.status, e.body, { allow: found.allowed.join(', ') });
    }
    const route: AdminRoute = found.route;
    if (route.write && caller.access !== 'full') return fail('WEIR_ERR_ADMIN_FORBIDDEN');
    if (!route.handle) {
      audit(200);
      return events.add(res);
    }
    try {
      const body = method === 'GET' || method === 'DELETE' ? undefined : await readBody(req);
      const answer = await route.handle({ host, settings: s, params: found.params, body, query: url.searchParams });
      audit(answer.status, undefined, answer.change);
      sendJson(res, answer.status, answer.body);
    } catch (err) {
      if (!isWeirError(err)) throw err;
      const detail = err.detail ?? (err.code === 'WEIR_ERR_ADMIN_CONFLICT' || err.code.startsWith('WEIR_ERR_ADMIN_') ? { reason: err.message } : undefined);
      fail(err.code, detail);
    }
  };
  const tlsOptions = (x: AdminSettings): https.ServerOptions | undefined => x.tls
    ? {
        cert: readFileSync(x.tls.certFile),
        key: readFileSync(x.tls.keyFile),
        ...(x.tls.caFile ? { ca: readFileSync(x.tls.caFile) } : {}),
        // Checked per request (authenticate), so a missing certificate gets a JSON 401.
        requestCert: x.auth.type === 'mtls',
        rejectUnauthorized: false,
      }
    : undefined;
  const tls = tlsOptions(settings);
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new WeirError('WEIR_ERR_LISTEN', `admin listener cannot bind ${settings.address}: ${err.message}`, { cause: err })));
    server.listen({ host: settings.host, port: settings.port }, resolve);
  });
  server.removeAllListeners('error');
  server.on('error', (err) => logger.error({ code: 'WEIR_ERR_LISTEN', address: settings.address, err: err.message }, 'admin listener error'));
  const a = server.address() as AddressInfo;
  logger.info({ address: `${a.address}:${a.port}`, tls: tls !== undefined }, 'admin API listening');
  return {
    address: { host: a.address, port: a.port },
    key: adminKey(settings),
    update: (next) => {
      settings = next;
      const t = tlsOptions(next);
      if (t && server instanceof https.Server) server.setSecureContext(t);
    },
    close: (graceMs = 0) => new Promise((resolve) => {
      events.close();
      server.close(() => resolve());
      server.closeIdleConnections();
      if (graceMs <= 0) server.closeAllConnections();
      else setTimeout(() => server.closeAllConnections(), graceMs).unref();
    }),
  };
}

/** What needs a new socket when it changes: the address, and HTTP against HTTPS. */
function adminKey(s: AdminSettings): string {
  return `${s.address}|${s.tls ? 'https' : 'http'}`;
}

/**
 * The admin listener of a reload, as a transaction step: a new address is bound before the
 * old one closes (at commit); the same address keeps its socket and takes the new settings.
 */
export async function planAdminServer(current: AdminServer | undefined, settings: AdminSettings | undefined, host: AdminHost, logger: Logger): Promise<{ commit(): AdminServer | undefined; abort(): void }> {
  if (current && settings && current.key === adminKey(settings)) return { commit: () => (current.update(settings), current), abort: () => {} };
  if (current && settings && current.key.split('|')[0] === settings.address) {
    throw new WeirError('WEIR_ERR_LISTEN', `admin-api at ${settings.address} cannot switch between HTTP and HTTPS on a reload; restart Weir for that`);
  }
  const next = settings ? await startAdminServer(settings, host, logger) : undefined;
  return {
    commit: () => {
      void current?.close(2_000);
      return next;
    },
    abort: () => void next?.close(),
  };
}

/**
 * `GET /api/v1/events`: one `stats` event a second to every connected UI, from one shared
 * timer that runs only while someone listens (a hundred open UIs cost one sample a second).
 */
class EventStream {
  private readonly clients = new Set<http.ServerResponse>();
  private timer: NodeJS.Timeout | undefined;
  private prev: Sample | undefined;
  private busy = false;
  private readonly host: AdminHost;
  private readonly logger: Logger;

  constructor(host: AdminHost, logger: Logger) {
    this.host = host;
    this.logger = logger;
  }

  add(res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write(': weir admin events\n\n');
    this.clients.add(res);
    res.on('close', () => {
      this.clients.delete(res);
      if (this.clients.size === 0) this.stop();
    });
    if (!this.timer) {
      this.timer = setInterval(() => void this.tick(), EVENT_MS);
      this.timer.unref();
    }
    void this.tick();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.prev = undefined;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const [metrics, state] = await Promise.all([this.host.metrics(), this.host.state()]);
      const cur = sample(metrics);
      const data = { at: new Date(cur.at).toISOString(), generation: state.generation, routes: routeStats(this.prev, cur), upstreams: state.upstreams, plugins: hookStats(metrics), reloads: this.host.reloads() };
      this.prev = cur;
      const line = `event: stats\ndata: ${JSON.stringify(data)}\n\n`;
      for (const c of this.clients) c.write(line);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'admin event stream: sampling failed');
    } finally {
      this.busy = false;
    }
  }

  close(): void {
    this.stop();
    for (const c of this.clients) c.end();
    this.clients.clear();
  }
}
