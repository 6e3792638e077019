/**
 * WebSocket (and CONNECT) tunnels over HTTP/1.1. The upgrade request is an Exchange like any
 * request (routing, filters, select-upstream, on-log, metrics, access log); then the bytes
 * are relayed as they are (extensions and subprotocols stay between client and origin), with
 * a frame meter enforcing the message size limit and an idle timeout on both sides.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { LimitsConfig } from '../config/types.ts';
import type { Dispatcher } from 'undici';
import { WeirError, isWeirError, type ErrorCode } from '../errors.ts';
import { errorBody, errorStatus } from '../error-body.ts';
import { randomUUID } from 'node:crypto';
import type { HeaderMap } from '../pipeline/phases.ts';
import type { ProxyCore } from '../proxy/core.ts';
import { Exchange, type TunnelOpener } from '../proxy/exchange.ts';
import type { CompiledRoute } from '../router/router.ts';
import { appendHeader, stripHopByHop } from '../proxy/headers.ts';
import type { Target, Upstream } from '../upstream/upstream.ts';
import { ReplyEnd } from './reply-end.ts';
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

/** A complete JSON error reply (error-body.ts) that closes the connection. */
export function rawError(code: ErrorCode, requestId: string = randomUUID()): Buffer {
  return rawReply(errorStatus(code), { 'content-type': 'application/json', 'x-request-id': requestId }, errorBody(code, requestId));
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
 * handed over. The request runs through the same Exchange as any other (routing, filters,
 * select-upstream and the upstream's balancer, retries of connect failures, on-log, metrics,
 * access log); only the last step differs: the chosen target is dialled and, once the
 * origin accepts, bytes are relayed both ways (see Tunnel). Replies made before that (an
 * error, a filter's local reply) go out as ordinary responses that close the connection.
 */
export function proxyTunnel(kind: 'websocket' | 'tunnel', core: ProxyCore, limits: LimitsConfig, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', () => socket.destroy());
  const bad = checkRequest(req, limits);
  if (bad) {
    core.metrics.errors.labels(bad.code).inc();
    if (socket.writable) socket.end(rawError(bad.code));
    else socket.destroy();
    return;
  }
  const res = closingResponse(req, socket);
  const ex = new Exchange(core, core.snapshot, req, res);
  if (kind === 'tunnel') {
    // authority-form target; an empty path means only routes without path conditions match.
    ex.ctx.request.authority = req.url ?? '';
    ex.ctx.request.path = '';
    ex.pathOutcome = undefined;
  }
  ex.tunnel = new Tunnel(kind, limits, socket, head, res);
  core.inFlight++;
  core.metrics.inFlight.inc();
  ex.start();
}

/** A response on the handed-over socket, for replies before a tunnel opens; closes after. */
function closingResponse(req: IncomingMessage, socket: Duplex): ServerResponse {
  const res = new ServerResponse(req);
  res.shouldKeepAlive = false;
  res.assignSocket(socket as Socket);
  res.once('finish', () => {
    res.detachSocket(socket as Socket);
    socket.end();
  });
  return res;
}

/** The tunnel half of an upgrade or CONNECT exchange (see TunnelOpener). */
class Tunnel implements TunnelOpener {
  private readonly kind: 'websocket' | 'tunnel';
  private readonly limits: LimitsConfig;
  private readonly socket: Duplex;
  private readonly head: Buffer;
  private readonly res: ServerResponse;
  /** The upstream connection being dialled or relayed. */
  private upstream: Duplex | undefined;

  constructor(kind: 'websocket' | 'tunnel', limits: LimitsConfig, socket: Duplex, head: Buffer, res: ServerResponse) {
    this.kind = kind;
    this.limits = limits;
    this.socket = socket;
    this.head = head;
    this.res = res;
    // The client leaving mid-dial: drop the upstream connection too (the exchange itself
    // sees the close through its response and ends as 499).
    socket.once('close', () => this.upstream?.destroy());
  }

  refuse(route: CompiledRoute): WeirError | undefined {
    if (route.config.builtinHandler === undefined && (this.kind === 'tunnel' || route.config.policies.allowWebsocket)) return undefined;
    return new WeirError('WEIR_ERR_UPGRADE_REFUSED', `route ${route.config.name} does not allow ${this.kind === 'websocket' ? 'WebSocket upgrades' : 'CONNECT'}`);
  }

  open(ex: Exchange, up: Upstream, target: Target): void {
    const { socket, limits } = this;
    if (socket.destroyed) {
      ex.releaseTarget();
      return ex.finish();
    }
    const upstream = connectUpstream(up, target);
    this.upstream = upstream;
    const connectTimer = setTimeout(() => upstream.destroy(new WeirError('WEIR_ERR_UPSTREAM_TIMEOUT', 'upstream connect timeout')), up.config.timeouts.connectMs);
    let established = false;
    // Before the origin answered: an upstream failure, retried or answered like any other.
    const failed = (err: Error): void => {
      clearTimeout(connectTimer);
      upstream.destroy();
      if (established) return;
      established = true; // once
      const werr = isWeirError(err) ? err : new WeirError(up.config.tls && /certificate|tls|ssl/i.test(String(err.message)) ? 'WEIR_ERR_UPSTREAM_TLS' : 'WEIR_ERR_UPSTREAM_CONNECT', undefined, { cause: err });
      ex.onResponseError(undefined as unknown as Dispatcher.DispatchController, werr);
    };
    upstream.on('error', (err) => (established ? socket.destroy() : failed(err)));
    // The client leaving before the origin answered: no relay will end this attempt, so
    // give the target slot and the client's admission back here.
    socket.once('close', () => {
      if (established) return;
      established = true;
      clearTimeout(connectTimer);
      upstream.destroy();
      ex.releaseTarget();
    });
    upstream.once(up.config.tls ? 'secureConnect' : 'connect', () => {
      clearTimeout(connectTimer);
      if (this.kind === 'tunnel') {
        established = true;
        this.established(ex, 200, target);
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (this.head.length) upstream.write(this.head);
        return this.relay(ex, upstream, undefined, undefined);
      }
      const ctx = ex.ctx;
      const h = stripHopByHop(ctx.request.headers);
      h['connection'] = 'upgrade';
      h['upgrade'] = 'websocket';
      appendHeader(h, 'x-forwarded-for', ex.forwardHop);
      h['x-forwarded-proto'] = ctx.request.scheme;
      if (ctx.request.authority) h['x-forwarded-host'] = ctx.request.authority;
      appendHeader(h, 'via', '1.1 weir');
      h['x-request-id'] = ctx.id;
      const block = headerBlock(h);
      if (block === undefined) {
        established = true;
        upstream.destroy();
        ex.releaseTarget();
        return ex.fail(new WeirError('WEIR_ERR_PLUGIN_INVALID_MUTATION', 'a filter set a header that cannot be sent'));
      }
      const path = ctx.request.query === '' ? ctx.request.path : `${ctx.request.path}?${ctx.request.query}`;
      upstream.write(`GET ${path} HTTP/1.1\r\n${block}\r\n`, 'latin1');
      readResponseHead(upstream, limits.maxHeaderBytes, (err, status, headBytes, rest) => {
        if (established) return;
        if (err) return failed(new WeirError('WEIR_ERR_UPSTREAM_PROTOCOL', err.message));
        established = true;
        this.established(ex, status!, target);
        ex.ctx.bytesOut += headBytes!.length + rest!.length;
        socket.write(headBytes!);
        if (rest!.length) socket.write(rest!);
        if (status !== 101) {
          // Not upgraded: relay the origin's reply as is, then close at its end.
          const reply = new ReplyEnd(headBytes!, status!);
          return this.relay(ex, upstream, undefined, undefined, reply.push(rest!) ? 'done' : reply);
        }
        if (this.head.length) upstream.write(this.head);
        this.relay(ex, upstream, new FrameMeter(limits.websocketMaxMessageBytes), new FrameMeter(limits.websocketMaxMessageBytes));
      });
    });
  }

  /** The origin answered: the socket is the tunnel's from now on, not the response's. */
  private established(ex: Exchange, status: number, target: Target): void {
    target.recordSuccess(performance.now() - ex.dispatchedAt);
    ex.headSent = true;
    ex.ctx.response = { status, headers: {} };
    this.res.detachSocket(this.socket as Socket);
    this.res.removeAllListeners('finish');
  }

  /**
   * Bytes both ways until either side ends, the idle timeout fires, or a message is too
   * big; then the exchange finishes (on-log, metrics, access log) with the bytes relayed.
   */
  private relay(ex: Exchange, upstream: Duplex, fromClient: FrameMeter | undefined, fromOrigin: FrameMeter | undefined, reply?: ReplyEnd | 'done'): void {
    const originOnly = reply !== undefined;
    const socket = this.socket;
    const ctx = ex.ctx;
    const idle = this.limits.websocketIdleTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    let ended = false;
    const end = (): void => {
      clearTimeout(timer);
      if (ended) return;
      ended = true;
      ex.releaseTarget();
      ex.finish();
    };
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
      if (idle > 0 && !originOnly) timer = setTimeout(() => close(1001), idle);
    };
    touch();
    const pump = (from: Duplex, to: Duplex, meter: FrameMeter | undefined, count: (n: number) => void): void => {
      from.on('data', (chunk: Buffer) => {
        touch();
        if (from === upstream && reply instanceof ReplyEnd && reply.push(chunk)) {
          count(chunk.length);
          to.write(chunk);
          return close(0);
        }
        if (meter && !meter.push(chunk)) {
          ctx.error ??= new WeirError('WEIR_ERR_BODY_TOO_LARGE', 'a WebSocket message exceeds websocket-max-message-bytes');
          from.pause();
          return close(1009);
        }
        count(chunk.length);
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => to.end());
    };
    if (!originOnly) pump(socket, upstream, fromClient, (n) => (ctx.bytesIn += n));
    pump(upstream, socket, fromOrigin, (n) => (ctx.bytesOut += n));
    if (reply === 'done') close(0);
    socket.on('close', () => {
      upstream.destroy();
      end();
    });
    upstream.on('close', () => {
      // A client socket already ending (a relayed reply) flushes what it has before closing.
      if (!socket.writableEnded) socket.destroy();
      end();
    });
    if (socket.destroyed) end();
  }
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
