/**
 * Downstream listeners. `http` speaks HTTP/1.1; `h2c` speaks HTTP/1.1 and HTTP/2 with prior
 * knowledge on the same port (the first bytes tell which); `https` offers h2 and http/1.1
 * by ALPN. Node's strict parser is always used (never `insecureHTTPParser`).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { Duplex } from 'node:stream';
import type { ListenerConfig, LimitsConfig } from '../config/types.ts';
import { WeirError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { ProxyCore } from '../proxy/core.ts';
import type { DownstreamRequest, DownstreamResponse } from '../proxy/exchange.ts';
import { createSecureContexts } from './tls.ts';
import { checkRequest, isWebSocketUpgrade } from './strict.ts';
import { proxyTunnel, rawError } from './websocket.ts';
import { errorBody, errorStatus } from '../error-body.ts';
import { setSessionPeer } from '../proxy/peer.ts';
import { inOrder } from './pipelining.ts';
import { bindEdge, compileEdge } from '../edge/policy.ts';
import { acceptProxyProtocol, carryProxied } from '../edge/proxy-protocol.ts';
import { looksLikePreface, prefaceRefusal } from './preface.ts';
import { refuseGrpc } from '../proxy/grpc.ts';
import type { HeaderMap } from '../pipeline/phases.ts';
import { admitConnection } from './connection-cap.ts';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** Set on a socket whose request was refused by the parser (see the deferred dispatch below). */
const kRejected = Symbol('weir.rejected');


function clientErrorCode(err: NodeJS.ErrnoException): ErrorCode {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return 'WEIR_ERR_HEADERS_TOO_LARGE';
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return 'WEIR_ERR_BAD_REQUEST';
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'HPE_HEADERS_TIMEOUT':
      return 'WEIR_ERR_REQUEST_TIMEOUT';
    default:
      return 'WEIR_ERR_BAD_REQUEST';
  }
}

export interface RunningListener {
  /** The settings now serving (they change when a reload swaps the protocol stack). */
  readonly config: ListenerConfig;
  /** The `limits {}` now serving. */
  readonly limits: LimitsConfig;
  readonly address: { host: string; port: number };
  /** Stop accepting; let in-flight exchanges finish. */
  stop(): void;
  /** Stop accepting and close each connection once it is idle (a listener a reload removed). */
  retire(): void;
  /** Close idle keep-alive connections (during drain). */
  closeIdle(): void;
  /** Destroy every connection now. */
  destroyAll(): void;
  /** Re-read certificates (TLS listeners). Throws if the new ones are invalid. */
  reloadCertificates(): void;
  /**
   * Builds the protocol stack for new settings on this bound socket without touching the
   * running one (throws on a bad certificate). `commit` hands new connections to it and drains
   * the old stack; the socket stays bound throughout, so clients never see a refused connect.
   */
  prepare(cfg: ListenerConfig, limits: LimitsConfig): { commit(): void; abort(): void };
  readonly connections: Set<net.Socket>;
}

/**
 * A listener is a bound socket (the acceptor) handing each connection to a protocol stack
 * (HTTP/1, h2c sniffing or TLS, with its limits). A reload that changes a listener's settings
 * but not its address swaps the stack and keeps the socket.
 */
export async function startListener(cfg: ListenerConfig, limits: LimitsConfig, core: ProxyCore, logger: Logger, reusePort = false): Promise<RunningListener> {
  const connections = new Set<net.Socket>();
  const m = core.metrics;
  let stack = buildStack(cfg, limits, core, logger);
  let current = cfg;
  let currentLimits = limits;
  const retired = new Set<Stack>();

  // http.Server turns Nagle off for its sockets; the acceptor does it for every stack.
  const server = net.createServer({ noDelay: true });
  server.maxConnections = limits.maxConnections > 0 ? limits.maxConnections : 0;
  server.on('connection', (socket: net.Socket) => {
    if (!admitConnection(core, socket)) return void m.errors.labels('WEIR_ERR_OVERLOADED').inc();
    const label = current.name;
    connections.add(socket);
    m.connections.labels(label).inc();
    m.connectionsTotal.labels(label).inc();
    socket.once('close', () => {
      connections.delete(socket);
      m.connections.labels(label).dec();
    });
    stack.accept(socket);
  });
  server.on('drop', () => m.errors.labels('WEIR_ERR_OVERLOADED').inc());

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      stack.destroy();
      reject(new WeirError('WEIR_ERR_LISTEN', `listener ${cfg.name} cannot bind ${cfg.address}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host: cfg.host, port: cfg.port, reusePort }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  // Accept errors (EMFILE, ENFILE) are reported on the server: count them, keep listening.
  server.on('error', (err: NodeJS.ErrnoException) => {
    m.errors.labels('WEIR_ERR_LISTEN').inc();
    logger.error({ listener: current.name, code: 'WEIR_ERR_LISTEN', err: err.message }, 'listener error');
  });
  stack.ready();
  const addr = server.address() as net.AddressInfo;
  logger.info({ listener: cfg.name, address: `${addr.address}:${addr.port}`, protocol: cfg.protocol }, 'listening');

  return {
    get config() {
      return current;
    },
    get limits() {
      return currentLimits;
    },
    address: { host: addr.address, port: addr.port },
    connections,
    stop: () => {
      server.close();
      stack.stop();
      for (const s of retired) s.stop();
    },
    retire: () => {
      server.close();
      stack.retire(() => {});
    },
    closeIdle: () => {
      stack.closeIdle();
      for (const s of retired) s.closeIdle();
    },
    destroyAll: () => {
      stack.destroy();
      for (const s of retired) s.destroy();
      for (const c of connections) c.destroy();
    },
    reloadCertificates: () => stack.reloadCertificates(),
    prepare: (next, nextLimits) => {
      const built = buildStack(next, nextLimits, core, logger);
      return {
        commit: () => {
          const old = stack;
          stack = built;
          current = next;
          currentLimits = nextLimits;
          server.maxConnections = nextLimits.maxConnections > 0 ? nextLimits.maxConnections : 0;
          built.ready();
          retired.add(old);
          old.retire(() => retired.delete(old));
        },
        abort: () => built.destroy(),
      };
    },
  };
}

/** One protocol stack: the servers a bound socket hands its connections to. */
interface Stack {
  accept(socket: net.Socket): void;
  /** Starts the servers' header/request timeout checks (Node runs them from 'listening'). */
  ready(): void;
  /** No more connections come: GOAWAY for HTTP/2, close idle HTTP/1 connections. */
  stop(): void;
  /** Like stop, then closes idle connections as they become idle; `done` when none is left. */
  retire(done: () => void): void;
  closeIdle(): void;
  destroy(): void;
  reloadCertificates(): void;
}

const RETIRE_SWEEP_MS = 250;

function buildStack(cfg: ListenerConfig, limits: LimitsConfig, core: ProxyCore, logger: Logger): Stack {
  const sessions = new Set<http2.Http2Session>();
  const sockets = new Set<net.Socket>();
  const m = core.metrics;
  const label = cfg.name;
  const edge = compileEdge(cfg.edge);

  const onRequest = (req: DownstreamRequest, res: DownstreamResponse): void => {
    bindEdge(req, edge);
    // Pipelined HTTP/1.1 requests: one at a time, in order (pipelining.ts).
    if (req.httpVersionMajor === 1) inOrder(req.socket, res as http.ServerResponse, () => serve(req, res));
    else serve(req, res);
  };
  const serve = (req: DownstreamRequest, res: DownstreamResponse): void => {
    // Checks Node's parser doesn't do (strict.ts): ambiguous framing, Host, limits.
    const bad = checkRequest(req, limits);
    if (bad !== undefined) {
      const code = bad.code;
      const id = randomUUID();
      const body = errorBody(code, id);
      logger.debug({ listener: label, id, reason: bad.reason, code }, 'rejected request');
      if (refuseGrpc(req as { httpVersionMajor: number; headers: HeaderMap }, res, new WeirError(code), id)) return void m.errors.labels(code).inc();
      if (req.httpVersionMajor === 1) {
        (res as http.ServerResponse).shouldKeepAlive = false;
        // The body may be framed ambiguously: never read it, close after the reply.
        (res as http.ServerResponse).setHeader('connection', 'close');
        res.once('finish', () => req.socket.destroySoon?.());
      }
      (res as http.ServerResponse).writeHead(errorStatus(code), { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': id });
      res.end(body);
      m.errors.labels(code).inc();
      return;
    }
    if (req.httpVersionMajor === 1 && req.headers['transfer-encoding'] !== undefined) {
      // Node reports a bad chunk only after the request event. Bytes that arrived with the
      // head are parsed before the next turn: dispatch then, so a request whose framing is
      // refused in the same packet never reaches the upstream.
      setImmediate(() => {
        if ((req.socket as net.Socket & { [kRejected]?: boolean })[kRejected] || req.socket.destroyed) return;
        core.handle(req, res);
      });
      return;
    }
    core.handle(req, res);
  };

  const onClientError = (err: NodeJS.ErrnoException, socket: Duplex): void => {
    const code = clientErrorCode(err);
    m.errors.labels(code).inc();
    logger.debug({ listener: label, err: err.message, code: err.code }, 'rejected malformed request');
    (socket as Duplex & { [kRejected]?: boolean })[kRejected] = true;
    const pending = (socket as Duplex & { _httpMessage?: http.ServerResponse })._httpMessage;
    // A 400 is still possible while no response head went out; afterwards only a reset.
    if (socket.writable && (!pending || !pending.headersSent)) {
      socket.end(rawError(code));
      (socket as net.Socket).destroySoon?.();
    } else socket.destroy();
  };

  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    bindEdge(req, edge);
    proxyTunnel('websocket', core, limits, req, socket, head);
  };
  const onConnect = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    bindEdge(req, edge);
    if (cfg.allowConnect) return proxyTunnel('tunnel', core, limits, req, socket, head);
    m.errors.labels('WEIR_ERR_METHOD_NOT_ALLOWED').inc();
    socket.on('error', () => socket.destroy());
    socket.end(rawError('WEIR_ERR_METHOD_NOT_ALLOWED'));
  };
  // Only WebSocket is ever upgraded; any other Upgrade (h2c!) is served as a plain request
  // and the Upgrade header is dropped as hop-by-hop.
  const shouldUpgrade = (req: http.IncomingMessage): boolean => isWebSocketUpgrade(req);

  const h1Options: http.ServerOptions = {
    maxHeaderSize: limits.maxHeaderBytes,
    // Both the listener and `limits {}` set these (both default to 60 s): the stricter wins.
    requestTimeout: minSet(cfg.requestTimeoutMs, limits.requestTimeoutMs),
    headersTimeout: limits.headerTimeoutMs,
    keepAliveTimeout: minSet(cfg.keepAliveTimeoutMs, limits.keepAliveTimeoutMs),
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(limits.headerTimeoutMs / 4))),
    insecureHTTPParser: false,
    // strict.ts refuses a missing Host with the same JSON 400 as every other refusal.
    requireHostHeader: false,
    joinDuplicateHeaders: false,
    shouldUpgradeCallback: shouldUpgrade,
  };
  const perConnection = cfg.maxRequestsPerConnection ?? limits.maxRequestsPerConnection ?? 0;
  const h2Settings: http2.Settings = {
    maxConcurrentStreams: cfg.maxConcurrentStreams ?? limits.http2.maxConcurrentStreams,
    initialWindowSize: limits.http2.initialWindowSize,
    maxHeaderListSize: limits.http2.maxHeaderListSize,
  };
  const h2Options = {
    settings: h2Settings,
    maxSessionMemory: limits.http2.maxSessionMemoryMb,
    // Above max-header-count, so that strict.ts answers 431 as for HTTP/1.1 (nghttp2 would
    // reset the stream with ENHANCE_YOUR_CALM); Node's HTTP/1.1 parser also stops at 2000.
    maxHeaderListPairs: Math.max(2000, limits.maxHeaderCount * 2) + 4,
    maxSettings: 32,
    // Bounds outstanding PINGs and SETTINGS (ping/settings floods).
    maxOutstandingPings: 10,
    maxSessionRejectedStreams: 100,
    maxSessionInvalidFrames: 1000,
    // Rapid reset (CVE-2023-44487): a burst of 1000 resets, then 33 per second, else GOAWAY.
    streamResetBurst: 1000,
    streamResetRate: 33,
    unknownProtocolTimeout: limits.headerTimeoutMs,
  };

  let dispatch: (socket: net.Socket) => void;
  let h1: http.Server | undefined;
  /** The servers of this stack that speak HTTP/1 (idle-connection closing, timeout checks). */
  const h1Servers: http.Server[] = [];
  let reloadCertificates = (): void => {};
  let stopWatching = (): void => {};

  const trackSession = (s: http2.Http2Session): void => {
    sessions.add(s);
    // The connection window is not a SETTINGS value: it is raised by a WINDOW_UPDATE.
    if (limits.http2.connectionWindowSize > 65_535) s.setLocalWindowSize(limits.http2.connectionWindowSize);
    // An HTTP/2 connection with no frames for the keep-alive timeout is closed (GOAWAY).
    s.setTimeout(minSet(cfg.keepAliveTimeoutMs, limits.keepAliveTimeoutMs), () => s.close());
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
      ...ctxs.serverOptions(),
      requestCert: tls.clientAuth,
      rejectUnauthorized: tls.clientAuth,
      minVersion: tls.minVersion as 'TLSv1.2' | 'TLSv1.3',
      maxVersion: tls.maxVersion as 'TLSv1.2' | 'TLSv1.3',
      // HTTP/1.1 over TLS goes through Node's http1 machinery: same limits as cleartext.
      ...(h1Options as object),
    } as http2.SecureServerOptions);
    // HTTP/1.1 over TLS: the h2 server keeps its own copies of the http1 settings.
    const s1 = secure as unknown as http.Server & { shouldUpgradeCallback: typeof shouldUpgrade };
    s1.shouldUpgradeCallback = shouldUpgrade;
    s1.maxRequestsPerSocket = perConnection;
    s1.keepAliveTimeout = h1Options.keepAliveTimeout!;
    s1.headersTimeout = h1Options.headersTimeout!;
    s1.requestTimeout = h1Options.requestTimeout!;
    secure.on('request', onRequest);
    secure.on('session', trackSession);
    secure.on('upgrade' as 'request', onUpgrade as never);
    secure.on('connect' as 'request', onConnect as never);
    secure.on('clientError' as 'request', onClientError as never);
    secure.on('tlsClientError', (err: Error) => logger.debug({ listener: label, err: err.message }, 'TLS handshake failed'));
    reloadCertificates = () => {
      ctxs.reload();
      // Clients without SNI get the server's own context: replace it too.
      secure.setSecureContext(ctxs.serverOptions());
    };
    stopWatching = ctxs.watch(() => {
      try {
        reloadCertificates();
        logger.info({ listener: label }, 'certificates reloaded');
      } catch (err) {
        logger.error({ listener: label, err: (err as Error).message }, 'certificate reload failed; keeping the old certificates');
      }
    });
    dispatch = (socket) => secure.emit('connection', socket);
    h1Servers.push(s1);
  } else {
    h1 = http.createServer(h1Options, onRequest);
    h1.maxRequestsPerSocket = perConnection;
    h1.on('clientError', onClientError);
    h1.on('upgrade', onUpgrade);
    h1.on('connect', onConnect);
    h1Servers.push(h1);
    if (cfg.protocol === 'h2c') {
      const h2 = http2.createServer(h2Options);
      h2.on('request', onRequest);
      h2.on('session', trackSession);
      // Sniff the first bytes: the HTTP/2 preface goes to the h2 server, anything else to h1.
      // Node's http2 reads from the socket's native handle, so bytes already read in JS
      // would be lost: an h2c connection is handed over wrapped in a Duplex that replays them.
      let handingOver: { address: string; port: number } | undefined;
      h2.prependListener('session', (s: http2.Http2Session) => {
        if (handingOver) setSessionPeer(s, handingOver);
      });
      dispatch = (socket) => {
        let buf: Buffer = Buffer.alloc(0);
        const onData = (chunk: Buffer): void => {
          buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
          const n = Math.min(buf.length, H2_PREFACE.length);
          const isH2 = buf.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
          if (isH2 && buf.length < H2_PREFACE.length) return;
          socket.off('data', onData);
          // From here on the h1 or h2 server owns the timeouts.
          socket.setTimeout(0);
          if (!isH2 && looksLikePreface(buf)) {
            socket.on('error', () => socket.destroy());
            socket.end(prefaceRefusal());
            return;
          }
          if (!isH2) {
            socket.pause();
            socket.unshift(buf);
            h1!.emit('connection', socket);
            socket.resume();
            return;
          }
          handingOver = { address: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 };
          const d = duplexOver(socket, buf);
          carryProxied(socket, d);
          h2.emit('connection', d);
          handingOver = undefined;
        };
        socket.on('data', onData);
        socket.setTimeout(limits.headerTimeoutMs, () => {
          if (buf.length < H2_PREFACE.length) socket.destroy();
        });
      };
    } else {
      const only = h1;
      dispatch = (socket) => only.emit('connection', socket);
    }
  }

  const mode = cfg.edge.proxyProtocol;
  if (mode !== 'off') {
    // PROXY protocol comes first, before HTTP and TLS (host/src/edge/proxy-protocol.ts).
    const inner = dispatch;
    const tlsStack = cfg.protocol === 'https';
    dispatch = (socket) => acceptProxyProtocol(socket, mode, edge.trust, limits.headerTimeoutMs, (rest) => {
      if (tlsStack) {
        // TLS reads the socket's native handle: bytes already read are replayed through a Duplex.
        const d = duplexOver(socket, rest);
        carryProxied(socket, d);
        inner(d as net.Socket);
        return;
      }
      if (rest.length) socket.unshift(rest);
      inner(socket);
      socket.resume();
    }, (reason) => {
      core.metrics.errors.labels('WEIR_ERR_PROXY_PROTOCOL').inc();
      logger.debug({ listener: label, code: 'WEIR_ERR_PROXY_PROTOCOL', reason, peer: socket.remoteAddress }, 'PROXY protocol header refused; connection closed');
    });
  }

  let sweeper: NodeJS.Timeout | undefined;
  const closeIdle = (): void => {
    for (const h of h1Servers) h.closeIdleConnections();
  };
  const stop = (): void => {
    stopWatching();
    // close() on a server that never listened: closes idle connections, ends the timeout checks.
    for (const h of h1Servers) h.close();
    for (const s of sessions) s.close(); // GOAWAY: finish open streams, accept no new ones
  };
  return {
    accept: (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      dispatch(socket);
    },
    ready: () => {
      for (const h of h1Servers) h.emit('listening');
    },
    stop: () => {
      clearInterval(sweeper);
      stop();
    },
    retire: (done) => {
      stopWatching();
      for (const s of sessions) s.close();
      // Keep the timeout checks for the requests in flight; close each connection once idle.
      const sweep = (): void => {
        closeIdle();
        if (sockets.size > 0) return;
        clearInterval(sweeper);
        stop();
        done();
      };
      sweeper = setInterval(sweep, RETIRE_SWEEP_MS);
      sweeper.unref();
      sweep();
    },
    closeIdle,
    destroy: () => {
      clearInterval(sweeper);
      stopWatching();
      for (const h of h1Servers) h.close();
      for (const s of sessions) s.destroy();
      for (const c of sockets) c.destroy();
    },
    reloadCertificates: () => reloadCertificates(),
  };
}

/** The smaller of two limits where 0 means unset. */
function minSet(a: number, b: number): number {
  if (!a) return b;
  if (!b) return a;
  return Math.min(a, b);
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
  if (first.length) d.push(first);
  socket.on('data', (chunk: Buffer) => {
    if (!d.push(chunk)) socket.pause();
  });
  socket.on('end', () => d.push(null));
  socket.on('close', () => d.destroy());
  socket.on('error', (err) => d.destroy(err));
  socket.setTimeout(0);
  return d;
}
