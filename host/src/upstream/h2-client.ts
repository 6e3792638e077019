/**
 * HTTP/2 to a target (`protocol "h2"`), on node:http2. It keeps undici's dispatch contract
 * (`dispatch(opts, handler)` with onRequestStart / onResponseStart / onResponseData /
 * onResponseEnd / onResponseError and a pause/resume/abort controller), so the exchange
 * drives HTTP/1.1 and HTTP/2 targets the same way, and undici's `request()` works on it.
 *
 * Why not undici for HTTP/2: its client-h2 removes the stream's 'data' listener when the
 * trailers arrive, so body bytes still buffered in a paused stream (client backpressure)
 * are dropped and the response is reported complete. Here the data listener stays until
 * 'end', and trailers are handed over after the last byte.
 *
 * Other differences that matter to a proxy: a request body that fails (a size limit firing
 * mid-stream, the client going away) resets the upstream stream (RST_STREAM CANCEL), it is
 * never ended cleanly; a response that ends with its head (gRPC trailers-only, 204) is
 * flagged on the controller (`endedWithHead`) so the proxy can answer the same way.
 */
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { Dispatcher } from 'undici';

const { HTTP2_HEADER_STATUS } = http2.constants;
const END_STREAM = 0x1;
// Connection-specific fields (RFC 9113 §8.2.2) never go on an HTTP/2 request.
const CONNECTION_FIELDS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'http2-settings']);

/** How to reach the target and what to bound. */
export interface H2ClientOptions {
  readonly host: string;
  readonly port: number;
  /** TLS (ALPN h2) when set; cleartext h2 with prior knowledge otherwise. */
  readonly tls?: tls.ConnectionOptions;
  readonly connectTimeoutMs: number;
  /** Close a session with no stream open for this long (0: never). */
  readonly idleTimeoutMs: number;
  /** From dispatch to the response head (0: none). */
  readonly headersTimeoutMs: number;
  /** Longest pause between two body chunks while the proxy is not pausing the stream (0: none). */
  readonly bodyTimeoutMs: number;
  /** HTTP/2 SETTINGS and windows for the upstream session. */
  readonly initialWindowSize?: number;
  readonly connectionWindowSize?: number;
}

type Body = Uint8Array | AsyncIterable<Uint8Array> | null | undefined;

function codedError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The controller handed to the handler: pause/resume the response, abort the exchange. */
class H2Controller implements Dispatcher.DispatchController {
  aborted = false;
  paused = false;
  reason: Error | null = null;
  /** The response ended with its HEADERS frame (END_STREAM on the head): no body, no trailers. */
  endedWithHead = false;
  rawHeaders: Buffer[] | null = null;
  rawTrailers: Buffer[] | null = null;
  stream: http2.ClientHttp2Stream | undefined;
  private readonly onAbort: (reason: Error) => void;
  private readonly onResume: () => void;

  constructor(onAbort: (reason: Error) => void, onResume: () => void) {
    this.onAbort = onAbort;
    this.onResume = onResume;
  }

  pause(): void {
    this.paused = true;
    this.stream?.pause();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.onResume();
  }

  abort(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.onAbort(reason);
  }
}

/** True when the response of this controller ended with its head (see H2Controller). */
export function endedWithHead(controller: Dispatcher.DispatchController | undefined): boolean {
  return (controller as H2Controller | undefined)?.endedWithHead === true;
}

/** One HTTP/2 session to one target, reopened on demand; streams multiplex over it. */
export class H2Client extends Dispatcher {
  readonly options: H2ClientOptions;
  private session: http2.ClientHttp2Session | undefined;
  private closed = false;
  private readonly streams = new Set<http2.ClientHttp2Stream>();
  private readonly authority: string;

  constructor(opts: H2ClientOptions) {
    super();
    this.options = opts;
    const h = opts.host.includes(':') && !opts.host.startsWith('[') ? `[${opts.host}]` : opts.host;
    this.authority = `${opts.tls ? 'https' : 'http'}://${h}:${opts.port}`;
  }

  /** The session, connecting if needed. Errors surface on the first stream. */
  private getSession(): http2.ClientHttp2Session {
    const s = this.session;
    if (s && !s.closed && !s.destroyed) return s;
    const o = this.options;
    const session = http2.connect(this.authority, {
      settings: { enablePush: false, ...(o.initialWindowSize ? { initialWindowSize: o.initialWindowSize } : {}) },
      createConnection: () => {
        const sock = o.tls ? tls.connect({ ...o.tls, host: o.host, port: o.port, ALPNProtocols: ['h2'] }) : net.connect({ host: o.host, port: o.port });
        // Small frames (gRPC messages, HEADERS, WINDOW_UPDATE) must not wait for Nagle.
        sock.setNoDelay(true);
        if (o.connectTimeoutMs > 0) {
          const t = setTimeout(() => sock.destroy(codedError(`connect timeout after ${o.connectTimeoutMs} ms`, 'UND_ERR_CONNECT_TIMEOUT')), o.connectTimeoutMs);
          sock.once(o.tls ? 'secureConnect' : 'connect', () => clearTimeout(t));
          sock.once('close', () => clearTimeout(t));
        }
        return sock;
      },
    });
    session.on('error', () => {}); // reported on each stream
    session.once('connect', () => {
      if (o.connectionWindowSize && o.connectionWindowSize > 65_535) session.setLocalWindowSize(o.connectionWindowSize);
    });
    session.once('close', () => {
      if (this.session === session) this.session = undefined;
    });
    session.once('goaway', () => {
      if (this.session === session) this.session = undefined;
    });
    if (o.idleTimeoutMs > 0) session.setTimeout(o.idleTimeoutMs, () => session.close());
    // No stream open: the session must not keep the process alive.
    session.unref();
    this.session = session;
    return session;
  }

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const exchange = new H2Exchange(this, opts, handler);
    if (this.closed) {
      exchange.fail(codedError('the HTTP/2 client is closed', 'UND_ERR_CLOSED'));
      return false;
    }
    exchange.start();
    return true;
  }

  /** Opens a stream on the current session (used by H2Exchange). */
  openStream(headers: http2.OutgoingHttpHeaders, endStream: boolean, signal: AbortSignal): http2.ClientHttp2Stream {
    const session = this.getSession();
    const stream = session.request(headers, { endStream, signal });
    this.streams.add(stream);
    session.ref();
    stream.once('close', () => {
      this.streams.delete(stream);
      if (this.streams.size === 0 && !session.destroyed) session.unref();
    });
    return stream;
  }

  /** Closes once open streams finish. */
  override async close(): Promise<void> {
    this.closed = true;
    const s = this.session;
    if (!s || s.destroyed) return;
    await new Promise<void>((resolve) => {
      s.close(() => resolve());
    });
  }

  /** Closes now, resetting open streams. */
  override async destroy(): Promise<void> {
    this.closed = true;
    this.session?.destroy();
    this.session = undefined;
  }
}

/** One request/response on one stream, driving the handler in undici's order. */
class H2Exchange {
  private readonly client: H2Client;
  private readonly opts: Dispatcher.DispatchOptions;
  private readonly handler: Dispatcher.DispatchHandler;
  private readonly controller: H2Controller;
  private stream: http2.ClientHttp2Stream | undefined;
  private done = false;
  private started = false;
  private trailers: Record<string, string | string[]> = {};
  private headTimer: NodeJS.Timeout | undefined;
  /**
   * Resets the stream. Aborting the stream's signal sends RST_STREAM(CANCEL) alone, where
   * `stream.close(code)` first ends the writable side: the peer would see END_STREAM, a
   * clean end of a cut request body, before the reset.
   */
  private readonly cancel = new AbortController();
  private bodyTimer: NodeJS.Timeout | undefined;

  constructor(client: H2Client, opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) {
    this.client = client;
    this.opts = opts;
    this.handler = handler;
    this.controller = new H2Controller(
      (reason) => this.abort(reason),
      () => this.resume(),
    );
  }

  start(): void {
    const { opts, controller } = this;
    this.handler.onRequestStart?.(controller, {});
    if (controller.aborted || this.done) return;
    const headers: http2.OutgoingHttpHeaders = { ':method': opts.method, ':path': opts.path, ':scheme': this.scheme() };
    let authority: string | undefined;
    const src = opts.headers as Record<string, string | string[] | undefined> | null | undefined;
    if (src) {
      for (const k in src) {
        const v = src[k];
        if (v === undefined) continue;
        const name = k.toLowerCase();
        if (name === 'host') authority = Array.isArray(v) ? v[0] : v;
        if (CONNECTION_FIELDS.has(name)) continue;
        if (name === 'te' && String(v).trim().toLowerCase() !== 'trailers') continue;
        headers[name] = v;
      }
    }
    headers[':authority'] = authority ?? `${this.client.options.host}:${this.client.options.port}`;
    const body = opts.body as Body;
    const empty = body === null || body === undefined || (body instanceof Uint8Array && body.length === 0);
    let stream: http2.ClientHttp2Stream;
    try {
      stream = this.client.openStream(headers, empty, this.cancel.signal);
    } catch (err) {
      return this.fail(err as Error);
    }
    this.stream = stream;
    controller.stream = stream;
    const ho = this.client.options;
    if (ho.headersTimeoutMs > 0) {
      this.headTimer = setTimeout(() => this.fail(codedError(`no response head within ${ho.headersTimeoutMs} ms`, 'UND_ERR_HEADERS_TIMEOUT')), ho.headersTimeoutMs);
    }
    stream.on('response', (h, flags) => this.onResponse(h, flags));
    stream.on('trailers', (t) => {
      this.trailers = plainHeaders(t);
    });
    stream.on('error', (err) => this.fail(err));
    stream.on('close', () => this.onClose());
    if (!empty) this.sendBody(stream, body!);
  }

  private scheme(): string {
    return this.client.options.tls ? 'https' : 'http';
  }

  private onResponse(h: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader, flags: number): void {
    if (this.done) return;
    clearTimeout(this.headTimer);
    const status = Number(h[HTTP2_HEADER_STATUS]);
    const headers = plainHeaders(h);
    const stream = this.stream!;
    this.started = true;
    if ((flags & END_STREAM) !== 0) this.controller.endedWithHead = true;
    this.handler.onResponseStart?.(this.controller, status, headers, '');
    if (this.done) return;
    stream.on('data', (chunk: Buffer) => {
      if (this.done) return;
      this.armBodyTimer();
      this.handler.onResponseData?.(this.controller, chunk);
    });
    stream.on('end', () => this.onEnd());
    if (this.controller.paused) stream.pause();
    else this.armBodyTimer();
    // A stream with END_STREAM on its head may never emit 'end' unless read.
    if (this.controller.endedWithHead && !this.controller.paused) stream.resume();
  }

  private armBodyTimer(): void {
    const ms = this.client.options.bodyTimeoutMs;
    if (!(ms > 0)) return;
    clearTimeout(this.bodyTimer);
    this.bodyTimer = setTimeout(() => {
      if (!this.controller.paused) this.fail(codedError(`no response data for ${ms} ms`, 'UND_ERR_BODY_TIMEOUT'));
    }, ms);
  }

  private resume(): void {
    const s = this.stream;
    if (!s || this.done) return;
    this.armBodyTimer();
    s.resume();
  }

  private onEnd(): void {
    if (this.done) return;
    this.done = true;
    this.clearTimers();
    // The response is complete while the request body still flows: stop sending it.
    const s = this.stream!;
    if (!s.writableEnded && !s.closed) this.cancel.abort();
    this.handler.onResponseEnd?.(this.controller, this.trailers);
  }

  private onClose(): void {
    if (this.done) return;
    const s = this.stream!;
    // Closed before 'end': a reset by the peer, a GOAWAY, or the connection going away.
    const code = s.rstCode;
    this.fail(codedError(`upstream stream closed${code ? ` with RST_STREAM code ${code}` : ''} before the response ended`, this.started ? 'UND_ERR_SOCKET' : 'ECONNRESET'));
  }

  /** Writes the request body with backpressure; a failing body resets the stream. */
  private sendBody(stream: http2.ClientHttp2Stream, body: Uint8Array | AsyncIterable<Uint8Array>): void {
    const onSent = (chunk: Uint8Array): void => {
      (this.handler as { onBodySent?: (c: Uint8Array) => void }).onBodySent?.(chunk);
    };
    if (body instanceof Uint8Array) {
      onSent(body);
      stream.end(body);
      return;
    }
    const it = body[Symbol.asyncIterator]();
    const pump = async (): Promise<void> => {
      for (;;) {
        const next = await it.next();
        if (this.done || stream.destroyed) return;
        if (next.done) {
          stream.end();
          return;
        }
        const chunk = next.value;
        onSent(chunk);
        if (!stream.write(chunk)) await drained(stream);
        if (this.done || stream.destroyed) return;
      }
    };
    pump().catch((err: Error) => this.abort(err));
  }

  /** The proxy (or a failing body) ends the exchange: reset the stream, report the reason. */
  abort(reason: Error): void {
    this.controller.aborted = true;
    this.fail(reason);
  }

  /** Ends with an error: RST_STREAM(CANCEL) if the stream is open, then onResponseError once. */
  fail(err: Error): void {
    if (this.done) return;
    // Node cancels the streams of a session that failed to connect: report the cause (ECONNREFUSED, ...).
    const cause = (err as { cause?: unknown }).cause;
    if ((err as { code?: string }).code === 'ERR_HTTP2_STREAM_CANCEL' && cause instanceof Error) err = cause;
    this.done = true;
    this.clearTimers();
    const s = this.stream;
    if (s && !s.closed && !s.destroyed) this.cancel.abort();
    this.handler.onResponseError?.(this.controller, err);
  }

  private clearTimers(): void {
    clearTimeout(this.headTimer);
    clearTimeout(this.bodyTimer);
  }
}

/** Waits for 'drain' (or the stream closing). */
function drained(stream: http2.ClientHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** Node's header object without pseudo-headers and the sensitive-headers symbol. */
function plainHeaders(h: http2.IncomingHttpHeaders): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const k of Object.keys(h)) {
    if (k.charCodeAt(0) === 58 /* : */) continue;
    const v = h[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}
