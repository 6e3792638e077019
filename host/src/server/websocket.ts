/**
 * WebSocket (and CONNECT) tunnels over HTTP/1.1. The upgrade request goes through routing
 * and the route's on-request-headers filters like any request; then the bytes are relayed
 * as they are (extensions and subprotocols stay between client and origin), with a frame
 * meter enforcing the message size limit and an idle timeout on both sides.
 */
import type { IncomingMessage } from 'node:http';
import { hostOf } from '../router/router.ts';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { LimitsConfig } from '../config/types.ts';
import { ERRORS, WeirError, isWeirError, type ErrorCode } from '../errors.ts';
import { isPromise, runHeaderHooks } from '../pipeline/chain.ts';
import type { HeaderMap, HeadersResult, LocalReply } from '../pipeline/phases.ts';
import type { ProxyCore } from '../proxy/core.ts';
import { Exchange, type DownstreamResponse } from '../proxy/exchange.ts';
import { appendHeader, stripHopByHop } from '../proxy/headers.ts';
import type { Target, Upstream } from '../upstream/upstream.ts';
import { checkRequest } from './strict.ts';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 413: 'Content Too Large', 414: 'URI Too Long', 429: 'Too Many Requests', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

/** A complete HTTP/1.1 response that closes the connection. */
export function rawReply(status: number, headers: Readonly<Record<string, string>>, body: Uint8Array | string): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\nconnection: close\r\ncontent-length: ${b.length}\r\n`;
  for (const k in headers) {
    const lk = k.toLowerCase();
    if (lk === 'connection' || lk === 'content-length' || lk === 'transfer-encoding') continue;
    const v = headers[k]!;
    if (!TOKEN.test(k) || BAD_VALUE.test(v)) continue; // never let a filter inject framing
    head += `${k}: ${v}\r\n`;
  }
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), b]);
}

export function rawError(code: ErrorCode, requestId?: string): Buffer {
  const spec = ERRORS[code];
  const body = JSON.stringify({ error: { code, status: spec.status, message: spec.message, ...(requestId ? { request_id: requestId } : {}) } });
  return rawReply(spec.status, { 'content-type': 'application/json', ...(requestId ? { 'x-request-id': requestId } : {}) }, body);
}

/**
 * Counts WebSocket payload bytes per message (RFC 6455 §5.2) across chunk boundaries.
 * `push` returns false once a message exceeds the limit.
 */
export class FrameMeter {
  private readonly max: number;
  private hdr = Buffer.alloc(14);
  private hdrLen = 0;
  private remaining = 0;
  private message = 0;

  constructor(max: number) {
    this.max = max;
  }

  push(chunk: Buffer): boolean {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        this.remaining -= n;
        i += n;
        continue;
      }
      this.hdr[this.hdrLen++] = chunk[i++]!;
      if (this.hdrLen < 2) continue;
      const len7 = this.hdr[1]! & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.hdr[1]! & 0x80 ? 4 : 0);
      if (this.hdrLen < need) continue;
      const len = len7 === 126 ? this.hdr.readUInt16BE(2) : len7 === 127 ? Number(this.hdr.readBigUInt64BE(2)) : len7;
      const opcode = this.hdr[0]! & 0x0f;
      const fin = (this.hdr[0]! & 0x80) !== 0;
      this.hdrLen = 0;
      this.remaining = len;
      if (opcode < 8) {
        this.message += len;
        if (this.message > this.max) return false;
        if (fin) this.message = 0;
      }
    }
    return true;
  }
}

/** A close frame (server side: unmasked; towards the origin: masked, as clients must). */
function closeFrame(code: number, masked: boolean): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  if (!masked) return Buffer.concat([Buffer.from([0x88, 2]), payload]);
  const mask = Buffer.from([0x5a, 0x17, 0x3c, 0x99]);
  for (let i = 0; i < 2; i++) payload[i]! ^= mask[i]!;
  return Buffer.concat([Buffer.from([0x88, 0x82]), mask, payload]);
}

function headerBlock(h: HeaderMap): string | undefined {
  let out = '';
  for (const k in h) {
    const v = h[k];
    if (v === undefined) continue;
    if (!TOKEN.test(k)) return undefined;
    for (const one of Array.isArray(v) ? v : [v]) {
      if (BAD_VALUE.test(one)) return undefined;
      out += `${k}: ${one}\r\n`;
    }
  }
  return out;
}

function connectUpstream(up: Upstream, target: Target): Duplex {
  const t = up.config.tls;
  if (!t) return net.connect({ host: target.host, port: target.port, noDelay: true });
  return tls.connect({
    host: target.host,
    port: target.port,
    ...{ noDelay: true },
    ALPNProtocols: ['http/1.1'],
    rejectUnauthorized: t.verify,
    servername: t.sni ?? (net.isIP(target.host) ? undefined : target.host),
    ca: t.caFile ? readFileSync(t.caFile) : undefined,
    cert: t.clientCert ? readFileSync(t.clientCert) : undefined,
    key: t.clientKey ? readFileSync(t.clientKey) : undefined,
  });
}

/**
 * Handles an HTTP/1.1 upgrade (`websocket`) or CONNECT (`tunnel`) request whose socket Node
 * handed over. Everything ends either in a relayed tunnel or a reply plus close.
 */
export function proxyTunnel(kind: 'websocket' | 'tunnel', core: ProxyCore, limits: LimitsConfig, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const m = core.metrics;
  const refuse = (code: ErrorCode, id?: string): void => {
    m.errors.labels(code).inc();
    if (socket.writable) socket.end(rawError(code, id));
    else socket.destroy();
  };
  socket.on('error', () => socket.destroy());
  const bad = checkRequest(req, limits);
  if (bad) return refuse(bad.code);
  const snap = core.snapshot;
  // The Exchange only builds the request context here (client, authority, headers).
  const ex = new Exchange(core, snap, req, undefined as unknown as DownstreamResponse);
  const ctx = ex.ctx;
  if (kind === 'tunnel') {
    // authority-form target; an empty path means only routes without path conditions match.
    ctx.request.authority = req.url ?? '';
    ctx.request.path = '';
  }
  core.inFlight++;
  m.inFlight.inc();
  let done = false;
  const finish = (status: number, err?: unknown): void => {
    if (done) return;
    done = true;
    if (err !== undefined) ctx.error = isWeirError(err) ? err : new WeirError('WEIR_ERR_INTERNAL', (err as Error)?.message, { cause: err });
    ctx.response ??= { status, headers: {} };
    core.finish(ex);
  };
  const fail = (err: unknown): void => {
    const werr = isWeirError(err) ? err : new WeirError('WEIR_ERR_INTERNAL', (err as Error)?.message, { cause: err });
    finish(werr.status, werr);
    if (socket.writable) socket.end(rawError(werr.code, ctx.id));
    else socket.destroy();
  };
  const local = (r: LocalReply): void => {
    ctx.response = { status: r.status, headers: { ...(r.headers ?? {}) } };
    finish(r.status);
    socket.end(rawReply(r.status, r.headers ?? {}, r.body ?? ''));
  };

  // A refused or redirected path never opens a tunnel.
  if (kind === 'websocket' && ex.pathOutcome !== undefined) return fail(new WeirError('WEIR_ERR_PATH_REJECTED', undefined, { detail: { ...ex.pathOutcome } }));
  const route = snap.router.match({ method: ctx.request.method, host: hostOf(ctx.request.authority), path: ctx.request.path, query: ctx.request.query, headers: ctx.request.headers });
  if (route === undefined) return fail(new WeirError('WEIR_ERR_NO_ROUTE'));
  (ctx as { routeName: string }).routeName = route.config.name;
  ex.route = route;
  if (route.config.builtinHandler !== undefined || (kind === 'websocket' && !route.config.policies.allowWebsocket)) return fail(new WeirError('WEIR_ERR_UPGRADE_REFUSED', `route ${route.config.name} does not allow ${kind === 'websocket' ? 'WebSocket upgrades' : 'CONNECT'}`));
  const chain = snap.chains.get(route.config.name)!;
  ex.chain = chain;
  let r: HeadersResult | Promise<HeadersResult>;
  try {
    r = chain.onRequestHeaders.length === 0 ? undefined : runHeaderHooks(chain.onRequestHeaders, 'onRequestHeaders', ctx, core.logger);
  } catch (err) {
    return fail(err);
  }
  const afterHeaders = (reply: HeadersResult): void => {
    if (reply !== undefined) return local(reply);
    if (socket.destroyed) return finish(499, new WeirError('WEIR_ERR_CLIENT_ABORTED'));
    const upName = ctx.upstream?.name ?? route.config.upstream;
    const up = upName === undefined ? undefined : snap.upstreams.get(upName);
    if (up === undefined) return fail(new WeirError('WEIR_ERR_NO_UPSTREAM'));
    const target = up.pick();
    if (target === undefined) return fail(new WeirError('WEIR_ERR_NO_HEALTHY_TARGET'));
    ctx.upstream = { name: up.name, target: target.address };
    ex.upstreamRef = up;
    ex.target = target;
    dial(up, target);
  };

  const dial = (up: Upstream, target: Target): void => {
    const upstream = connectUpstream(up, target);
    const connectTimer = setTimeout(() => upstream.destroy(new WeirError('WEIR_ERR_UPSTREAM_TIMEOUT', 'upstream connect timeout')), up.config.timeouts.connectMs);
    let established = false;
    upstream.on('error', (err) => {
      clearTimeout(connectTimer);
      if (!established) {
        target.recordFailure(true);
        return fail(isWeirError(err) ? err : new WeirError(/certificate|tls|ssl/i.test(String((err as Error).message)) && up.config.tls ? 'WEIR_ERR_UPSTREAM_TLS' : 'WEIR_ERR_UPSTREAM_CONNECT', undefined, { cause: err }));
      }
      socket.destroy();
    });
    socket.on('close', () => {
      if (!established) finish(499, new WeirError('WEIR_ERR_CLIENT_ABORTED'));
      upstream.destroy();
    });
    upstream.once(up.config.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      if (kind === 'tunnel') {
        established = true;
        finish(200);
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length) upstream.write(head);
        return relay(upstream, undefined, undefined);
      }
      const h = stripHopByHop(ctx.request.headers);
      h['connection'] = 'upgrade';
      h['upgrade'] = 'websocket';
      appendHeader(h, 'x-forwarded-for', ex.forwardHop);
      h['x-forwarded-proto'] = ctx.request.scheme;
      if (ctx.request.authority) h['x-forwarded-host'] = ctx.request.authority;
      appendHeader(h, 'via', '1.1 weir');
      h['x-request-id'] = ctx.id;
      const block = headerBlock(h);
      if (block === undefined) return fail(new WeirError('WEIR_ERR_PLUGIN_INVALID_MUTATION', 'a filter set a header that cannot be sent'));
      const path = ctx.request.query === '' ? ctx.request.path : `${ctx.request.path}?${ctx.request.query}`;
      upstream.write(`GET ${path} HTTP/1.1\r\n${block}\r\n`, 'latin1');
      readResponseHead(upstream, limits.maxHeaderBytes, (err, status, headBytes, rest) => {
        if (err) {
          target.recordFailure(false);
          return fail(new WeirError('WEIR_ERR_UPSTREAM_PROTOCOL', err.message));
        }
        target.recordSuccess(0);
        established = true;
        ctx.response = { status: status!, headers: {} };
        finish(status!);
        socket.write(headBytes!);
        if (status !== 101) {
          // Not upgraded: relay the origin's reply as is, then close.
          if (rest!.length) socket.write(rest!);
          upstream.pipe(socket);
          return;
        }
        if (rest!.length) socket.write(rest!);
        if (head.length) upstream.write(head);
        relay(upstream, new FrameMeter(limits.websocketMaxMessageBytes), new FrameMeter(limits.websocketMaxMessageBytes));
      });
    });
  };

  /** Bytes both ways until either side ends, the idle timeout fires, or a message is too big. */
  const relay = (upstream: Duplex, fromClient: FrameMeter | undefined, fromOrigin: FrameMeter | undefined): void => {
    const idle = limits.websocketIdleTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const close = (code: number): void => {
      clearTimeout(timer);
      if (fromClient && code) {
        if (socket.writable) socket.write(closeFrame(code, false));
        if (upstream.writable) upstream.write(closeFrame(code, true));
      }
      socket.end();
      upstream.end();
      // Don't wait on a peer that never closes its side.
      setTimeout(() => {
        socket.destroy();
        upstream.destroy();
      }, 1000).unref();
    };
    const touch = (): void => {
      clearTimeout(timer);
      if (idle > 0) timer = setTimeout(() => close(1001), idle);
    };
    touch();
    const pump = (from: Duplex, to: Duplex, meter: FrameMeter | undefined): void => {
      from.on('data', (chunk: Buffer) => {
        touch();
        if (meter && !meter.push(chunk)) {
          m.errors.labels('WEIR_ERR_BODY_TOO_LARGE').inc();
          from.pause();
          return close(1009);
        }
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => to.end());
    };
    pump(socket, upstream, fromClient);
    pump(upstream, socket, fromOrigin);
    socket.on('close', () => clearTimeout(timer));
    upstream.on('close', () => {
      clearTimeout(timer);
      socket.destroy();
    });
  };

  if (isPromise<HeadersResult>(r)) r.then(afterHeaders, fail);
  else afterHeaders(r);
}

/** Reads an HTTP/1.1 response head; hands back the head bytes and whatever followed. */
function readResponseHead(s: Duplex, max: number, cb: (err: Error | undefined, status?: number, head?: Buffer, rest?: Buffer) => void): void {
  let buf = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    const end = buf.indexOf('\r\n\r\n');
    if (end === -1) {
      if (buf.length > max) stop(new Error('upstream response head too large'));
      return;
    }
    s.off('data', onData);
    s.off('end', onEnd);
    s.pause();
    const head = buf.subarray(0, end + 4);
    const match = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(head.toString('latin1'));
    if (!match) return cb(new Error('invalid upstream status line'));
    cb(undefined, Number(match[1]), head, buf.subarray(end + 4));
    s.resume();
  };
  const onEnd = (): void => stop(new Error('upstream closed before responding'));
  const stop = (err: Error): void => {
    s.off('data', onData);
    s.off('end', onEnd);
    cb(err);
  };
  s.on('data', onData);
  s.on('end', onEnd);
}
