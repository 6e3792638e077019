/**
 * Downstream listeners. `http` speaks HTTP/1.1; `h2c` speaks HTTP/1.1 and HTTP/2 with prior
 * knowledge on the same port (the first bytes tell which); `https` offers h2 and http/1.1
 * by ALPN. Node's strict parser is always used (never `insecureHTTPParser`).
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { readFileSync } from 'node:fs';
import type { ListenerConfig, LimitsConfig } from '../config/types.ts';
import { ERRORS, WeirError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { ProxyCore } from '../proxy/core.ts';
import type { DownstreamRequest, DownstreamResponse } from '../proxy/exchange.ts';
import { createSecureContexts } from './tls.ts';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

const REASONS: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 413: 'Content Too Large', 414: 'URI Too Long', 431: 'Request Header Fields Too Large', 503: 'Service Unavailable' };

/** A raw error reply for failures before Node produced a request object. */
function rawError(code: ErrorCode): Buffer {
  const spec = ERRORS[code];
  const body = JSON.stringify({ error: { code, status: spec.status, message: spec.message } });
  return Buffer.from(`HTTP/1.1 ${spec.status} ${REASONS[spec.status] ?? 'Error'}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

function clientErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'WEIR_ERR_HEADERS_TOO_LARGE';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return 'WEIR_ERR_REQUEST_TIMEOUT';
    default:
      return 'WEIR_ERR_BAD_REQUEST';
  }
}

export interface RunningListener {
  readonly config: ListenerConfig;
  readonly address: { host: string; port: number };
  /** Stop accepting; let in-flight exchanges finish. */
  stop(): void;
  /** Close idle keep-alive connections (during drain). */
  closeIdle(): void;
  /** Destroy every connection now. */
  destroyAll(): void;
  /** Re-read certificates (TLS listeners). Throws if the new ones are invalid. */
  reloadCertificates(): void;
  readonly connections: Set<net.Socket>;
}

export async function startListener(cfg: ListenerConfig, limits: LimitsConfig, core: ProxyCore, logger: Logger): Promise<RunningListener> {
  const connections = new Set<net.Socket>();
  const sessions = new Set<http2.Http2Session>();
  const m = core.metrics;
  const label = cfg.name;

  const onRequest = (req: DownstreamRequest, res: DownstreamResponse): void => {
    // Checks Node's parser doesn't do: header count and request-line length.
    const code = preflight(req, limits);
    if (code !== undefined) {
      const e = new WeirError(code);
      const body = JSON.stringify({ error: { code, status: e.status, message: e.message } });
      if (req.httpVersionMajor === 1) (res as http.ServerResponse).shouldKeepAlive = false;
      (res as http.ServerResponse).writeHead(e.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
      m.errors.labels(code).inc();
      return;
    }
    core.handle(req, res);
  };

  const h1Options: http.ServerOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    requestTimeout: cfg.requestTimeoutMs || limits.requestTimeoutMs,
    headersTimeout: limits.headerTimeoutMs,
    keepAliveTimeout: cfg.keepAliveTimeoutMs || limits.keepAliveTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(limits.headerTimeoutMs / 4))),
    insecureHTTPParser: false,
    requireHostHeader: true,
    joinDuplicateHeaders: false,
  };
  const h2Settings: http2.Settings = {
    maxConcurrentStreams: limits.http2.maxConcurrentStreams,
    initialWindowSize: limits.http2.initialWindowSize,
    maxHeaderListSize: limits.http2.maxHeaderListSize,
  };
  const h2Options = {
    settings: h2Settings,
    maxSessionMemory: limits.http2.maxSessionMemoryMb,
    maxHeaderListPairs: limits.maxHeaderCount + 4,
    maxSettings: 32,
    // Bounds outstanding PINGs and SETTINGS (ping/settings floods).
    maxOutstandingPings: 10,
    maxSessionRejectedStreams: 100,
    maxSessionInvalidFrames: 1000,
    unknownProtocolTimeout: limits.headerTimeoutMs,
  };

  let server: net.Server;
  let h1: http.Server | undefined;
  let reloadCertificates = (): void => {};

  const trackSession = (s: http2.Http2Session): void => {
    sessions.add(s);
    s.once('close', () => sessions.delete(s));
  };

  if (cfg.protocol === 'https') {
    const tls = cfg.tls!;
    const ctxs = createSecureContexts(tls);
    const secure = http2.createSecureServer({
      ...h2Options,
      allowHTTP1: true,
      ALPNProtocols: ['h2', 'http/1.1'],
      SNICallback: (name, cb) => cb(null, ctxs.current.forName(name)),
      cert: readFileSync(tls.certFile),
      key: readFileSync(tls.keyFile),
      ...(tls.caFile ? { ca: readFileSync(tls.caFile) } : {}),
      requestCert: tls.clientAuth,
      rejectUnauthorized: tls.clientAuth,
      minVersion: tls.minVersion as 'TLSv1.2' | 'TLSv1.3',
      // HTTP/1.1 over TLS goes through Node's http1 machinery: same limits as cleartext.
      ...(h1Options as object),
    } as http2.SecureServerOptions);
    secure.on('request', onRequest);
    secure.on('session', trackSession);
    reloadCertificates = () => ctxs.reload();
    server = secure;
  } else {
    h1 = http.createServer(h1Options, onRequest);
    h1.maxRequestsPerSocket = limits.maxRequestsPerConnection || 0;
    h1.on('clientError', (err: NodeJS.ErrnoException, socket) => {
      const code = clientErrorCode(err);
      m.errors.labels(code).inc();
      logger.debug({ listener: label, err: err.message, code: err.code }, 'rejected malformed request');
      if (socket.writable && !(socket as net.Socket & { _httpMessage?: unknown })._httpMessage) socket.end(rawError(code));
      else socket.destroy();
    });
    if (cfg.protocol === 'h2c') {
      const h2 = http2.createServer(h2Options);
      h2.on('request', onRequest);
      h2.on('session', trackSession);
      // Sniff the first bytes: the HTTP/2 preface goes to the h2 server, anything else to h1.
      // Node's http2 reads from the socket's native handle, so bytes already read in JS
      // would be lost: an h2c connection is handed over wrapped in a Duplex that replays them.
      let handingOver: { address: string; port: number } | undefined;
      h2.prependListener('session', (s: http2.Http2Session) => {
        if (handingOver) (s as Http2SessionWithPeer)[kPeer] = handingOver;
      });
      server = net.createServer((socket) => {
        let buf: Buffer = Buffer.alloc(0);
        const onData = (chunk: Buffer): void => {
          buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
          const n = Math.min(buf.length, H2_PREFACE.length);
          const isH2 = buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
          if (isH2 && buf.length < H2_PREFACE.length) return;
          socket.off('data', onData);
          if (!isH2) {
            socket.pause();
            socket.unshift(buf);
            h1!.emit('connection', socket);
            socket.resume();
            return;
          }
          handingOver = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
          h2.emit('connection', duplexOver(socket, buf));
          handingOver = undefined;
        };
        socket.on('data', onData);
        socket.setTimeout(limits.headerTimeoutMs, () => {
          if (buf.length < H2_PREFACE.length) socket.destroy();
        });
      });
    } else {
      server = h1;
    }
  }

  server.maxConnections = limits.maxConnections > 0 ? limits.maxConnections : 0;
  server.on('connection', (socket: net.Socket) => {
    connections.add(socket);
    m.connections.labels(label).inc();
    m.connectionsTotal.labels(label).inc();
    socket.once('close', () => {
      connections.delete(socket);
      m.connections.labels(label).dec();
    });
  });
  server.on('drop', () => m.errors.labels('WEIR_ERR_OVERLOADED').inc());

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => reject(new WeirError('WEIR_ERR_LISTEN', `listener ${cfg.name} cannot bind ${cfg.address}: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen({ host: cfg.host, port: cfg.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const addr = server.address() as net.AddressInfo;
  logger.info({ listener: cfg.name, address: `${addr.address}:${addr.port}`, protocol: cfg.protocol }, 'listening');

  return {
    config: cfg,
    address: { host: addr.address, port: addr.port },
    connections,
    stop: () => {
      server.close();
      for (const s of sessions) s.close(); // GOAWAY: finish open streams, accept no new ones
    },
    closeIdle: () => {
      h1?.closeIdleConnections();
      if (server instanceof http.Server && server !== h1) server.closeIdleConnections();
      (server as Partial<http.Server>).closeIdleConnections?.call(server);
    },
    destroyAll: () => {
      for (const s of sessions) s.destroy();
      for (const c of connections) c.destroy();
    },
    reloadCertificates: () => reloadCertificates(),
  };
}

export const kPeer = Symbol.for('weir.peer');
type Http2SessionWithPeer = http2.Http2Session & { [kPeer]?: { address: string; port: number } };

/** The real peer of an h2c session that was handed over through a Duplex. */
export function sessionPeer(session: http2.Http2Session | undefined): { address: string; port: number } | undefined {
  return (session as Http2SessionWithPeer | undefined)?.[kPeer];
}

function duplexOver(socket: net.Socket, first: Buffer): Duplex {
  const d = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _enc, cb) {
      socket.write(chunk, cb);
    },
    final(cb) {
      socket.end();
      cb();
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined);
      cb(err);
    },
  });
  d.push(first);
  socket.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) socket.pause();
  });
  socket.on('end', () => d.push(null));
  socket.on('close', () => d.destroy());
  socket.on('error', (err) => d.destroy(err));
  socket.setTimeout(0);
  return d;
}

function preflight(req: DownstreamRequest, limits: LimitsConfig): ErrorCode | undefined {
  const raw = req.rawHeaders;
  if (raw.length / 2 > limits.maxHeaderCount + (req.httpVersionMajor === 2 ? 4 : 0)) return 'WEIR_ERR_HEADERS_TOO_LARGE';
  const url = req.url ?? '';
  if (url.length + (req.method?.length ?? 0) + 10 > limits.maxRequestLineBytes) return 'WEIR_ERR_URI_TOO_LONG';
  return undefined;
}
