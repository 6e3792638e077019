/**
 * One request/response exchange through the proxy. The object is also the undici dispatch
 * handler for the upstream call, so a request allocates one object rather than a web of
 * closures. Flow:
 *
 *   start ─► route ─► on-request-headers ─► (body hooks) ─► select-upstream ─► dispatch
 *     dispatch ─► onResponseStart ─► on-response-headers ─► writeHead
 *              ─► onResponseData ─► (body hooks) ─► write (pause upstream on backpressure)
 *              ─► onResponseEnd ─► end ─► finish (on-log, metrics, access log)
 *   any error before the response head ─► retry (if allowed) or error reply; after ─► reset.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { pipeline, type Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { WeirError, isWeirError, type ErrorCode } from '../errors.ts';
import type { Chain } from '../pipeline/chain.ts';
import { setResponseTrailers } from '../pipeline/trailers.ts';
import { isPromise, runBodyHooks, runHeaderHooks, runLogHooks, runSelectUpstream } from '../pipeline/chain.ts';
import { LOCAL_STREAM_PROPERTY } from '../pipeline/phases.ts';
import type { HeaderMap, HeadersResult, LocalReply, RequestContext, RequestHead, ResponseHead, ClientInfo, Phase } from '../pipeline/phases.ts';
import { hostOf, type CompiledRoute } from '../router/router.ts';
import type { Target, Upstream } from '../upstream/upstream.ts';
import { routeBreaker, type BreakerTicket, type CircuitBreaker } from '../upstream/breaker.ts';
import { appendHeader, firstHeader, headersFromRaw, stripHopByHop } from './headers.ts';
import { contentCodings, inflateRequestBody, type InflateLimits } from '../compression/inflate-request.ts';
import type { ProxyCore } from './core.ts';
import type { Snapshot } from './snapshot.ts';
import { sessionPeer } from './peer.ts';
import { armAttemptTimeout } from './attempt-timeout.ts';
import { endUnreadH2Body, mustCloseH1 } from './early-response.ts';
import { normalizePath, originFormOf, type PathRedirect, type PathRejected } from '../edge/path.ts';
import { edgeOf } from '../edge/policy.ts';
import { dropManagedLookalikes } from '../edge/lookalike.ts';
import { errorReply, errorStatus } from '../error-body.ts';
import { clientAddress } from '../edge/client.ts';
import { proxiedOf } from '../edge/proxy-protocol.ts';
import { endedWithHead } from '../upstream/h2-client.ts';
import { endWithGrpcStatus, grpcErrorHeaders, grpcLocalReply, isGrpcRequest, respondHeadOnly } from './grpc.ts';
import { watchBodyRate, watchSend } from './slow-clients.ts';
import type { RequestTrace } from '../observability/tracing.ts';

export type DownstreamRequest = IncomingMessage | Http2ServerRequest;
export type DownstreamResponse = ServerResponse | Http2ServerResponse;

/**
 * What a WebSocket upgrade or CONNECT adds to an exchange (host/src/server/websocket.ts):
 * the same pipeline runs (routing, on-request-headers, select-upstream, on-log, metrics,
 * access log), but the chosen target is dialled as a raw tunnel instead of an HTTP request.
 */
export interface TunnelOpener {
  /** A refusal if the route does not take this kind of tunnel. */
  refuse(route: CompiledRoute): WeirError | undefined;
  /** Connects to `target`; ends by calling the exchange's onResponseError or finish. */
  open(ex: Exchange, up: Upstream, target: Target): void;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);
const VIA = '1.1 weir';
const EMPTY = new Uint8Array(0);

function validRequestId(v: string | undefined): v is string {
  return v !== undefined && v.length > 0 && v.length <= 200 && /^[\x21-\x7e]+$/.test(v);
}

/** Maps an undici (or other) failure to a stable Weir error. */
export function classifyUpstreamError(err: unknown): WeirError {
  if (isWeirError(err)) return err;
  const code = (err as { code?: string })?.code ?? '';
  const map: Record<string, ErrorCode> = {
    ECONNREFUSED: 'WEIR_ERR_UPSTREAM_CONNECT',
    EHOSTUNREACH: 'WEIR_ERR_UPSTREAM_CONNECT',
    ENETUNREACH: 'WEIR_ERR_UPSTREAM_CONNECT',
    ENOTFOUND: 'WEIR_ERR_UPSTREAM_CONNECT',
    EAI_AGAIN: 'WEIR_ERR_UPSTREAM_CONNECT',
    UND_ERR_CONNECT_TIMEOUT: 'WEIR_ERR_UPSTREAM_TIMEOUT',
    UND_ERR_HEADERS_TIMEOUT: 'WEIR_ERR_UPSTREAM_TIMEOUT',
    UND_ERR_BODY_TIMEOUT: 'WEIR_ERR_UPSTREAM_TIMEOUT',
    ECONNRESET: 'WEIR_ERR_UPSTREAM_RESET',
    EPIPE: 'WEIR_ERR_UPSTREAM_RESET',
    UND_ERR_SOCKET: 'WEIR_ERR_UPSTREAM_RESET',
    UND_ERR_CLOSED: 'WEIR_ERR_UPSTREAM_RESET',
    HPE_INVALID_CONSTANT: 'WEIR_ERR_UPSTREAM_PROTOCOL',
    UND_ERR_INFO: 'WEIR_ERR_UPSTREAM_PROTOCOL',
    UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'WEIR_ERR_UPSTREAM_PROTOCOL',
  };
  let c: ErrorCode | undefined = map[code];
  if (!c && code.startsWith('HPE_')) c = 'WEIR_ERR_UPSTREAM_PROTOCOL';
  if (!c && /certificate|ssl|tls/i.test(`${code} ${(err as Error)?.message}`)) c = 'WEIR_ERR_UPSTREAM_TLS';
  return new WeirError(c ?? 'WEIR_ERR_UPSTREAM_RESET', undefined, { cause: err, detail: { upstreamError: code || (err as Error)?.message } });
}

export class Exchange implements Dispatcher.DispatchHandler {
  readonly core: ProxyCore;
  readonly snap: Snapshot;
  readonly req: DownstreamRequest;
  readonly res: DownstreamResponse;
  readonly ctx: RequestContext;
  route: CompiledRoute | undefined;
  chain: Chain | undefined;
  upstreamRef: Upstream | undefined;
  target: Target | undefined;
  /** Bytes to send upstream: the downstream stream, a buffered body, or nothing. */
  body: Readable | AsyncIterable<Uint8Array> | Uint8Array | null = null;
  bodyReplayable = true;
  attempt = 0;
  tried: Set<number> | undefined;
  controller: Dispatcher.DispatchController | undefined;
  dispatchedAt = 0;
  headSent = false;
  finished = false;
  retrying = false;
  isRetry = false;
  timer: NodeJS.Timeout | undefined;
  responseBodyBuf: Uint8Array[] | undefined;
  responseBodyLen = 0;
  /** The hop this request came from, appended to X-Forwarded-For upstream. */
  readonly forwardHop: string;
  /** A gRPC request over HTTP/2: proxy errors are gRPC-shaped (grpc.ts). */
  get grpc(): boolean {
    return this.req.httpVersionMajor === 2 && isGrpcRequest(this.ctx.request.headers);
  }
  /** Set for WebSocket upgrades and CONNECT: the target is dialled as a tunnel. */
  tunnel: TunnelOpener | undefined;
  /** Set when the path is refused or must be redirected (path-normalization). */
  pathOutcome: PathRejected | PathRedirect | undefined;
  /** The listener's `default-route`, for requests no route matches. */
  private readonly defaultRoute: string | undefined;
  /** The request's spans, when tracing is on (observability/tracing.ts). */
  trace: RequestTrace | undefined;
  /** The status of the upstream response in flight (its attempt span ends with it). */
  private upstreamStatus: number | undefined;

  constructor(core: ProxyCore, snap: Snapshot, req: DownstreamRequest, res: DownstreamResponse) {
    this.core = core;
    this.snap = snap;
    this.req = req;
    this.res = res;
    const h2 = req.httpVersionMajor === 2;
    const headers = headersFromRaw(req.rawHeaders);
    let url = req.url ?? '/';
    let authority = (h2 ? firstHeader(headers, ':authority') : undefined) ?? firstHeader(headers, 'host') ?? '';
    // Absolute-form target (RFC 9112 §3.2.2): its authority replaces Host.
    if (url.charCodeAt(0) !== 47 /* / */ && url !== '*') {
      try {
        const u = new URL(url);
        authority = u.host;
        headers['host'] = authority;
        url = originFormOf(url);
      } catch {
        // left as is; the router will not match
      }
    }
    if (h2) {
      for (const k in headers) if (k.charCodeAt(0) === 58 /* : */) delete headers[k];
      if (authority && headers['host'] === undefined) headers['host'] = authority;
    }
    const q = url.indexOf('?');
    const edge = edgeOf(req);
    this.defaultRoute = edge.defaultRoute;
    // Route on, and forward, the normalised path (host/src/edge/path.ts).
    const rawPath = q === -1 ? url : url.slice(0, q);
    const normal = normalizePath(rawPath, edge.path);
    if (typeof normal !== 'string') this.pathOutcome = normal;
    const sock = req.socket;
    const tlsSock = sock as { encrypted?: boolean; getPeerCertificate?: () => { subject?: Record<string, string> } | null; authorized?: boolean };
    const encrypted = tlsSock.encrypted === true;
    let certSubject: string | undefined;
    if (encrypted && tlsSock.authorized && tlsSock.getPeerCertificate) {
      const c = tlsSock.getPeerCertificate();
      if (c?.subject) certSubject = Object.entries(c.subject).map(([k, v]) => `${k}=${v}`).join(',');
    }
    // The one client address (host/src/edge/client.ts): trusted proxies, PROXY protocol, XFF.
    const proxied = proxiedOf(sock);
    const peer = proxied?.peer ?? (h2 ? sessionPeer((req as Http2ServerRequest).stream.session) : undefined) ?? { address: sock?.remoteAddress ?? '', port: sock?.remotePort ?? 0 };
    const ca = clientAddress(peer, proxied?.source, headers, edge.trust);
    this.forwardHop = ca.forwardHop;
    const client: ClientInfo = { address: ca.address, port: ca.port, certSubject, tls: encrypted };
    // Headers Weir or its filters assert never come from the client (Snapshot.assertedHeaders).
    for (const name of snap.assertedHeaders) delete headers[name];
    dropManagedLookalikes(headers, snap.assertedHeaders);
    if (!edge.trustIncomingRequestId) delete headers['x-request-id'];
    const incomingId = firstHeader(headers, 'x-request-id');
    const request: RequestHead = {
      method: req.method ?? 'GET',
      scheme: encrypted ? 'https' : 'http',
      authority,
      path: typeof normal === 'string' ? normal : rawPath,
      query: q === -1 ? '' : url.slice(q + 1),
      headers,
      httpVersion: h2 ? '2' : req.httpVersion,
    };
    this.ctx = {
      id: validRequestId(incomingId) ? incomingId : randomUUID(),
      startTime: performance.now(),
      client,
      routeName: '',
      routePrefix: undefined,
      request,
      response: undefined,
      upstream: undefined,
      properties: new Map(),
      filterState: new Map<Phase, unknown>(),
      error: undefined,
      bytesIn: 0,
      bytesOut: 0,
      attempts: 0,
      previousTarget: undefined,
      upstreamMs: undefined,
      pauseMs: 0,
    };
    const tracing = snap.tracing;
    if (tracing !== undefined) {
      this.ctx.trace = this.trace = tracing.startRequest({
        id: this.ctx.id, method: request.method, scheme: request.scheme, path: request.path, host: hostOf(authority),
        client: client.address, httpVersion: request.httpVersion, headers, start: this.ctx.startTime,
      });
    }
  }

  // ── request side ────────────────────────────────────────────────────────────────

  start(): void {
    const { ctx, snap } = this;
    this.res.once('close', this.onClientClose);
    const cap = snap.config.limits.maxInFlightRequests;
    // core.inFlight counts this request too.
    if (cap > 0 && this.core.inFlight > cap) return this.fail(new WeirError('WEIR_ERR_OVERLOADED', `${cap} requests in flight (limits max-in-flight-requests)`));
    if (this.pathOutcome !== undefined) return this.refusePath(this.pathOutcome);
    const route = snap.router.match({ method: ctx.request.method, host: hostOf(ctx.request.authority), path: ctx.request.path, query: ctx.request.query, headers: ctx.request.headers }) ?? (this.defaultRoute !== undefined ? snap.router.named(this.defaultRoute) : undefined);
    if (route === undefined) return this.fail(new WeirError('WEIR_ERR_NO_ROUTE', `no route matches ${ctx.request.method} ${ctx.request.authority}${ctx.request.path}`));
    this.route = route;
    const name = route.config.name;
    (ctx as { routeName: string }).routeName = name;
    const refused = this.tunnel?.refuse(route);
    if (refused !== undefined) return this.fail(refused);
    const prefixes = snap.prefixes.get(name);
    if (prefixes) (ctx as { routePrefix: string | undefined }).routePrefix = prefixes.find((p) => ctx.request.path.startsWith(p));
    if (route.config.builtinHandler !== undefined) {
      // Health checks and scrapes are not traced: their span is dropped unended (never exported).
      this.trace = this.ctx.trace = undefined;
      return this.core.builtin(this, route.config.builtinHandler);
    }
    const chain = snap.chains.get(name)!;
    this.chain = chain;
    let r: HeadersResult | Promise<HeadersResult>;
    try {
      r = chain.onRequestHeaders.length === 0 ? undefined : runHeaderHooks(chain.onRequestHeaders, 'onRequestHeaders', ctx, this.core.logger);
    } catch (err) {
      return this.fail(err);
    }
    if (isPromise<HeadersResult>(r)) r.then((v) => this.afterRequestHeaders(v), (err) => this.fail(err));
    else this.afterRequestHeaders(r);
  }

  /** A path the listener's path-normalization refuses (400) or redirects (307, query kept). */
  private refusePath(o: PathRejected | PathRedirect): void {
    if (o.kind === 'reject') return this.fail(new WeirError('WEIR_ERR_PATH_REJECTED', undefined, { detail: { reason: o.reason, path: this.ctx.request.path } }));
    const q = this.ctx.request.query;
    this.sendLocal({ status: 307, headers: { location: q === '' ? o.location : `${o.location}?${q}` } }, false);
  }

  private afterRequestHeaders(reply: HeadersResult): void {
    if (this.finished) return;
    if (reply !== undefined) return this.localReply(reply);
    if (this.ctx.pauseMs > 0) {
      // A plugin's `pause` decision (rate-limit's on-limit "delay"): hold, then go on. A client
      // that leaves meanwhile finishes the exchange, and the check above ends the hold.
      const ms = this.ctx.pauseMs;
      this.ctx.pauseMs = 0;
      setTimeout(() => this.afterRequestHeaders(undefined), ms);
      return;
    }
    const upName = this.ctx.upstream?.name ?? this.route!.config.upstream;
    const up = upName === undefined ? undefined : this.snap.upstreams.get(upName);
    if (up === undefined) return this.fail(new WeirError('WEIR_ERR_NO_UPSTREAM', upName ? `upstream ${upName} is not defined` : `route ${this.ctx.routeName} has no upstream`));
    this.upstreamRef = up;
    const err = this.prepareBody();
    if (err) return this.fail(err);
    const decode = this.route!.config.policies.requestDecompression;
    if (decode !== undefined && this.body !== null && contentCodings(this.ctx.request.headers['content-encoding']).length > 0) {
      this.decodeRequestBody(decode).then((reply) => (reply ? this.localReply(reply) : this.selectAndDispatch()), (e) => this.fail(e));
      return;
    }
    if (this.body !== null && this.chain!.onRequestBody.length > 0 && this.chain!.requestBufferLimit !== undefined) {
      this.bufferRequestBody().then((reply) => (reply ? this.localReply(reply) : this.selectAndDispatch()), (e) => this.fail(e));
      return;
    }
    // Small bodies are read whole before an upstream connection is taken (slow-clients.ts).
    if (this.readFirst) {
      this.readWholeBody().then(() => this.selectAndDispatch(), (e) => this.fail(e));
      return;
    }
    this.selectAndDispatch();
  }

  private bodyLimit(): number {
    // gRPC streams are long-lived: only a route's own max-body-size bounds them (as Envoy).
    return this.route!.config.policies.maxBodySize ?? (this.grpc ? Infinity : this.snap.config.limits.maxBodyBytes);
  }

  /** Decides what body goes upstream, enforcing the size limit. */
  private prepareBody(): WeirError | undefined {
    const req = this.req;
    const headers = this.ctx.request.headers;
    const h2 = req.httpVersionMajor === 2;
    const clHeader = firstHeader(headers, 'content-length');
    const cl = clHeader === undefined ? undefined : Number(clHeader);
    let hasBody: boolean;
    if (h2) hasBody = !(req as Http2ServerRequest).stream.endAfterHeaders && cl !== 0;
    else hasBody = (cl !== undefined && cl > 0) || headers['transfer-encoding'] !== undefined;
    if (!hasBody) {
      this.body = null;
      return undefined;
    }
    const limit = this.bodyLimit();
    if (cl !== undefined && cl > limit) return new WeirError('WEIR_ERR_BODY_TOO_LARGE', `body of ${cl} bytes exceeds the limit of ${limit}`);
    const chain = this.chain!;
    this.bodyReplayable = false;
    if (chain.onRequestBody.length > 0 && chain.requestBufferLimit === undefined) {
      this.body = this.streamRequestBody(limit);
    } else if (cl !== undefined && chain.onRequestBody.length === 0 && !h2) {
      // Node's parser enforces Content-Length framing: pass the stream as is (fastest).
      // (Not HTTP/2: undici destroys a stream body it stops reading, and an HTTP/2 request
      // must stay readable to drain what the client still sends; see early-response.ts.)
      // Bytes are counted in onBodySent (a 'data' listener here would steal the stream).
      this.body = req as Readable;
    } else {
      this.body = this.limitedBody(limit);
    }
    // Small bodies, and every body of a `buffer-requests` route, are read whole before dispatch
    // (readWholeBody), HTTP/1 and HTTP/2 alike.
    this.readFirst = chain.onRequestBody.length === 0 && ((cl !== undefined && cl <= this.snap.config.limits.requestBodyBufferBytes) || this.route!.config.policies.bufferRequests === true);
    this.wholeBodyLimit = limit;
    return undefined;
  }

  onBodySent(chunk: Buffer | string): void {
    this.ctx.bytesIn += chunk.length;
  }

  /** The body has a Content-Length within `limits request-body-buffer-bytes`. */
  private readFirst = false;
  /** The body limit readWholeBody enforces (a chunked body has no Content-Length to check first). */
  private wholeBodyLimit = Infinity;
  /** Stops the request body rate watch. */
  private stopBodyWatch: (() => void) | undefined;

  /** Reads a small body whole (at `limits min-request-body-rate` at least) so it can be sent at once. */
  private async readWholeBody(): Promise<void> {
    const parts: Buffer[] = [];
    let n = 0;
    this.watchBody(() => n, () => false);
    for await (const chunk of (this.req as Readable).iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > this.wholeBodyLimit) {
        this.stopBodyWatch?.();
        throw new WeirError('WEIR_ERR_BODY_TOO_LARGE', `body exceeds the limit of ${this.wholeBodyLimit}`);
      }
      parts.push(chunk);
    }
    this.stopBodyWatch?.();
    this.body = parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
    this.bodyReplayable = true;
  }

  /** Starts the minimum body rate watch: a slower client gets 408 (and the upstream call is stopped). */
  private watchBody(bytes: () => number, stalled: () => boolean): void {
    const rate = this.snap.config.limits.minRequestBodyRate;
    this.stopBodyWatch = watchBodyRate(rate, bytes, stalled, () => {
      if (this.finished) return;
      const err = new WeirError('WEIR_ERR_REQUEST_TIMEOUT', `request body slower than ${rate} bytes/s`);
      if (this.controller && !this.controller.aborted) this.controller.abort(err);
      else this.fail(err);
    });
  }

  private async *limitedBody(limit: number): AsyncIterable<Uint8Array> {
    let n = 0;
    for await (const chunk of (this.req as Readable).iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > limit) throw new WeirError('WEIR_ERR_BODY_TOO_LARGE', `body exceeds the limit of ${limit} bytes`);
      yield chunk;
    }
  }

  private async *streamRequestBody(limit: number): AsyncIterable<Uint8Array> {
    let n = 0;
    const chain = this.chain!;
    const it = (this.req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    let next = await it.next();
    while (!next.done) {
      const chunk = next.value;
      n += chunk.length;
      if (n > limit) throw new WeirError('WEIR_ERR_BODY_TOO_LARGE', `body exceeds the limit of ${limit} bytes`);
      next = await it.next();
      const out = await runBodyHooks(chain.onRequestBody, 'onRequestBody', this.ctx, { data: chunk, end: next.done === true }, this.core.logger);
      if (!(out instanceof Uint8Array)) throw new WeirError('WEIR_ERR_PLUGIN_INVALID_MUTATION', 'a local reply from on-request-body is only possible in buffered mode');
      if (out.length) yield out;
    }
    if (n === 0) {
      const out = await runBodyHooks(chain.onRequestBody, 'onRequestBody', this.ctx, { data: EMPTY, end: true }, this.core.logger);
      if (out instanceof Uint8Array && out.length) yield out;
    }
  }

  /**
   * `request-decompression`: read the whole encoded body (up to the route's body limit), decode
   * it within the caps (inflate-request.ts), run the request-body hooks once on the decoded
   * bytes, and send those upstream without Content-Encoding.
   */
  private async decodeRequestBody(limits: InflateLimits): Promise<LocalReply | undefined> {
    const limit = this.bodyLimit();
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of this.req as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > limit) throw new WeirError('WEIR_ERR_BODY_TOO_LARGE', `body exceeds the limit of ${limit} bytes`);
      parts.push(chunk);
    }
    const headers = this.ctx.request.headers;
    let out: Uint8Array = await inflateRequestBody(Buffer.concat(parts, n), headers['content-encoding'], limits);
    const chain = this.chain!;
    if (chain.requestBufferLimit !== undefined && out.length > chain.requestBufferLimit) throw new WeirError('WEIR_ERR_BODY_TOO_LARGE', `decoded body exceeds the buffering limit of ${chain.requestBufferLimit} bytes`);
    if (chain.onRequestBody.length > 0) {
      const r = await runBodyHooks(chain.onRequestBody, 'onRequestBody', this.ctx, { data: out, end: true }, this.core.logger);
      if (!(r instanceof Uint8Array)) return r;
      out = r;
    }
    this.body = out;
    this.bodyReplayable = true;
    delete headers['content-encoding'];
    delete headers['transfer-encoding'];
    headers['content-length'] = String(out.length);
    return undefined;
  }

  /** Buffered mode: read the whole body (up to the smallest filter limit → 413), run the hooks once. */
  private async bufferRequestBody(): Promise<LocalReply | undefined> {
    const limit = Math.min(this.chain!.requestBufferLimit!, this.bodyLimit());
    const parts: Buffer[] = [];
    let n = 0;
    for await (const chunk of this.req as AsyncIterable<Buffer>) {
      n += chunk.length;
      if (n > limit) throw new WeirError('WEIR_ERR_BODY_TOO_LARGE', `body exceeds the buffering limit of ${limit} bytes`);
      parts.push(chunk);
    }
    const out = await runBodyHooks(this.chain!.onRequestBody, 'onRequestBody', this.ctx, { data: Buffer.concat(parts, n), end: true }, this.core.logger);
    if (!(out instanceof Uint8Array)) return out;
    this.body = out;
    this.bodyReplayable = true;
    const headers = this.ctx.request.headers;
    delete headers['transfer-encoding'];
    headers['content-length'] = String(out.length);
    return undefined;
  }

  private selectAndDispatch(): void {
    if (this.finished) return;
    const up = this.upstreamRef!;
    const chain = this.chain!;
    let chosen: number | undefined | Promise<number | undefined>;
    try {
      chosen = chain.selectUpstream.length === 0 ? undefined : runSelectUpstream(chain.selectUpstream, this.ctx, up.targets, this.core.logger);
    } catch (err) {
      return this.fail(err);
    }
    if (isPromise<number | undefined>(chosen)) chosen.then((i) => this.balance(i), (err) => this.fail(err));
    else this.balance(chosen);
  }

  /** The upstream's balancer plugin, once this exchange used it (its hold is released in finish). */
  private balancer: Phase | undefined;

  /** No filter chose a target: the upstream's load-balancing plugin does, else built-in round robin. */
  private balance(index: number | undefined): void {
    if (index !== undefined || this.finished) return this.dispatchTo(index);
    const up = this.upstreamRef!;
    const bal = this.snap.balancers.get(up.name);
    // Panic mode: the balancer plugin would keep to the few healthy targets; Weir's own round robin spreads over all.
    if (bal === undefined || up.panicking()) return this.dispatchTo(undefined);
    this.balancer = bal;
    let chosen: number | undefined | Promise<number | undefined>;
    try {
      chosen = runSelectUpstream([bal], this.ctx, up.targets, this.core.logger);
    } catch (err) {
      return this.fail(err);
    }
    if (isPromise<number | undefined>(chosen)) chosen.then((i) => this.dispatchTo(i), (err) => this.fail(err));
    else this.dispatchTo(chosen);
  }

  private dispatchTo(index: number | undefined): void {
    if (this.finished) return;
    const up = this.upstreamRef!;
    if (up.breaker === undefined && up.circuitOpen() && !up.panicking()) return this.fail(new WeirError('WEIR_ERR_CIRCUIT_OPEN', `every target of upstream ${up.name} is ejected after repeated connect failures`));
    const pool = up.config.connectionPool;
    if (pool.maxRequests > 0 && up.inFlight >= pool.maxRequests) return this.fail(new WeirError('WEIR_ERR_UPSTREAM_MAX_REQUESTS', `upstream ${up.name} has ${pool.maxRequests} requests in flight`));
    // Circuit breakers: the upstream's, then the route's; each admitted attempt holds a ticket.
    this.settleBreakers(undefined);
    const routeCb = routeBreaker(this.core, this.route!.config);
    const refused = up.breaker !== undefined && !this.admitTo(up.breaker) ? `upstream ${up.name}` : routeCb !== undefined && !this.admitTo(routeCb) ? `route ${this.route!.config.name}` : undefined;
    if (refused !== undefined) {
      this.settleBreakers(undefined);
      return this.fail(new WeirError('WEIR_ERR_CIRCUIT_OPEN', `the circuit breaker of ${refused} is open (or half-open with its probes in flight)`));
    }
    let chosen = index !== undefined && !this.tried?.has(index) ? up.targets[index] : undefined;
    // Slow start: a plugin's choice of a target that came back is kept with the probability of
    // its ramped share; otherwise the request goes to another target, if there is one.
    if (chosen !== undefined && up.config.slowStartMs > 0 && Math.random() >= chosen.slowStartFactor()) {
      chosen = up.pick(new Set([...(this.tried ?? []), chosen.index])) ?? chosen;
    }
    // A target being drained takes no new request, whoever chose it.
    const target = chosen !== undefined && !up.draining.has(chosen.address) ? chosen : up.pick(this.tried);
    if (target === undefined) return this.fail(new WeirError('WEIR_ERR_NO_HEALTHY_TARGET', `no target left in upstream ${up.name}`));
    // Admission (upstream/admission.ts): the client's cap, then a bounded wait for a connection.
    const admission = this.core.admission;
    if (!this.clientCounted) {
      const cap = this.snap.config.limits.maxUpstreamRequestsPerClient;
      if (!admission.enterClient(this.ctx.client.address, cap)) return this.fail(new WeirError('WEIR_ERR_CLIENT_LIMIT', `client ${this.ctx.client.address} has ${cap} upstream requests in flight`));
      this.clientCounted = true;
    }
    if (up.config.protocol === 'h2') return this.send(target);
    if (pool.maxPendingRequests > 0 && target.localInFlight >= pool.maxConnections && up.pending >= pool.maxPendingRequests) {
      return this.fail(new WeirError('WEIR_ERR_UPSTREAM_MAX_PENDING', `upstream ${up.name} has ${pool.maxPendingRequests} requests waiting for a connection`));
    }
    // Counted in up.pending while it waits (for max-pending-requests).
    let queued = false;
    let started = false;
    const unqueue = (): void => {
      if (queued) up.pending--;
      queued = false;
    };
    const cancel = admission.whenFree(target, pool.maxConnections, pool.queueTimeoutMs, () => {
      started = true;
      unqueue();
      this.send(target);
    }, (e) => {
      unqueue();
      this.fail(e);
    });
    if (started || this.finished) return;
    queued = true;
    up.pending++;
    this.cancelWait = () => {
      unqueue();
      cancel();
    };
  }

  /** Circuit-breaker tickets of the attempt being made (breaker.ts). */
  private tickets: BreakerTicket[] | undefined;

  /** Takes a ticket from `b` for this attempt; false when it refuses (open, or half-open and full). */
  private admitTo(b: CircuitBreaker): boolean {
    const ticket = b.admit();
    if (ticket === undefined) return false;
    (this.tickets ??= []).push(ticket);
    return true;
  }

  /** Reports the attempt's outcome to its breakers (undefined: none, e.g. the client left). */
  private settleBreakers(ok: boolean | undefined): void {
    const ts = this.tickets;
    if (ts === undefined) return;
    this.tickets = undefined;
    for (const t of ts) t.breaker.settle(t, ok);
  }

  /** Counted in the client's upstream requests (admission.ts). */
  private clientCounted = false;
  private cancelWait: (() => void) | undefined;

  private send(target: Target): void {
    if (this.finished) return;
    const up = this.upstreamRef!;
    this.cancelWait = undefined;
    this.target = target;
    this.ctx.upstream = { name: up.name, target: target.address };
    this.ctx.previousTarget = target.index;
    this.ctx.attempts++;
    this.waited = false;
    const req = this.ctx.request;
    this.trace?.startAttempt(req.method, up.name, target.host, target.port, this.attempt);
    const headers = this.upstreamHeaders();
    const policies = this.route!.config.policies;
    const timeout = policies.timeoutMs;
    this.attempt++;
    target.begin();
    this.core.metrics.targetRequests.child(up.name, target.address).value++;
    up.inFlight++;
    this.holding = true;
    this.dispatchedAt = performance.now();
    if (this.tunnel !== undefined) return this.tunnel.open(this, up, target);
    if (timeout !== undefined && this.timer === undefined) {
      this.timer = setTimeout(() => this.onRouteTimeout(timeout), timeout);
    }
    this.attemptTimer = armAttemptTimeout(this, up.config.timeouts.requestMs);
    const opts: Dispatcher.DispatchOptions = {
      method: req.method as Dispatcher.HttpMethod,
      path: req.query === '' ? req.path : `${req.path}?${req.query}`,
      headers: headers as Dispatcher.DispatchOptions['headers'],
      body: this.body as Dispatcher.DispatchOptions['body'],
    };
    const body = this.body;
    if (body !== null && !(body instanceof Uint8Array) && this.stopBodyWatch === undefined && !this.grpc) {
      // A streamed body is rate-checked too, except while the upstream is not reading it (what
      // the client sent piles up unread), and gRPC streams, whose messages may be far apart.
      const r = this.req as Readable;
      this.watchBody(() => this.ctx.bytesIn, () => r.readableLength >= r.readableHighWaterMark);
      r.once('end', this.stopBodyWatch!);
    }
    target.pool.dispatch(opts, this);
  }

  private upstreamHeaders(): HeaderMap {
    const ctx = this.ctx;
    const h = stripHopByHop(ctx.request.headers);
    // Node already answered "100 Continue" to the client; undici refuses Expect upstream.
    delete h['expect'];
    // gRPC needs "te: trailers" end to end; it's the one TE value safe to forward.
    const te = firstHeader(ctx.request.headers, 'te');
    if (te !== undefined && te.trim().toLowerCase() === 'trailers') h['te'] = 'trailers';
    if (this.body === null) delete h['content-length'];
    appendHeader(h, 'x-forwarded-for', this.forwardHop);
    h['x-forwarded-proto'] = ctx.request.scheme;
    if (ctx.request.authority) h['x-forwarded-host'] = ctx.request.authority;
    appendHeader(h, 'via', VIA);
    h['x-request-id'] = ctx.id;
    // With tracing on, the attempt's span is the upstream's parent; without it traceparent passes as sent.
    if (this.trace !== undefined) this.trace.inject(h);
    return h;
  }

  /** The upstream's `timeouts request` for the attempt in flight (see attempt-timeout.ts). */
  attemptTimer: NodeJS.Timeout | undefined;
  /** The route's deadline passed: no retry is left to try. */
  private routeExpired = false;

  private onRouteTimeout(ms: number): void {
    this.timer = undefined;
    this.routeExpired = true;
    const err = new WeirError('WEIR_ERR_UPSTREAM_TIMEOUT', `route timeout of ${ms} ms exceeded`);
    this.retrying = false;
    if (this.controller && !this.controller.aborted) this.controller.abort(err);
    else this.fail(err);
  }

  // ── undici DispatchHandler ────────────────────────────────────────────────────────

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.finished) controller.abort(new WeirError('WEIR_ERR_CLIENT_ABORTED'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    const target = this.target!;
    const up = this.upstreamRef!;
    const now = performance.now();
    this.addWait(now);
    const metrics = this.core.metrics;
    metrics.upstreamDuration.child(up.name).observe((now - this.dispatchedAt) / 1000);
    metrics.targetDuration.child(up.name, target.address).observe((now - this.dispatchedAt) / 1000);
    if (statusCode >= 500) metrics.targetErrors.child(up.name, target.address, '5xx').value++;
    target.recordSuccess(now - this.dispatchedAt);
    this.settleBreakers(statusCode < 500);
    this.observeOutlier(target, statusCode);
    this.upstreamStatus = statusCode;
    const retry = this.route!.config.policies.retry;
    if (statusCode >= 500 && this.canRetry() && (retry.retryOn.includes(String(statusCode)) || retry.retryOn.includes('5xx'))) {
      this.trace?.endAttempt(statusCode, undefined);
      this.retrying = true;
      controller.abort(new WeirError('WEIR_ERR_UPSTREAM_RESET', `retrying after status ${statusCode}`));
      return;
    }
    const resHeaders = stripHopByHop(headers as HeaderMap);
    appendHeader(resHeaders, 'via', VIA);
    this.ctx.response = { status: statusCode, headers: resHeaders };
    const chain = this.chain!;
    // Body filters may change the length: drop the origin's (after the header hooks saw it, unless one set its own).
    const originLength = chain.onResponseBody.length > 0 && !chain.responseKeepsLength ? resHeaders['content-length'] : undefined;
    const dropLength = (): void => {
      const { headers: h, status } = this.ctx.response!;
      // HEAD, 204 and 304 carry no body: their length describes the representation and stays.
      if (originLength === undefined || this.ctx.request.method === 'HEAD' || status === 204 || status === 304) return;
      if (h['content-length'] === originLength) delete h['content-length'];
    };
    let r: HeadersResult | Promise<HeadersResult>;
    try {
      r = chain.onResponseHeaders.length === 0 ? undefined : runHeaderHooks(chain.onResponseHeaders, 'onResponseHeaders', this.ctx, this.core.logger);
    } catch (err) {
      controller.abort(err as Error);
      return;
    }
    if (isPromise<HeadersResult>(r)) {
      // Body events may still arrive while the hooks run: queue them until the head is out.
      controller.pause();
      const queued: Array<() => void> = (this.queued = []);
      r.then(
        (v) => {
          this.queued = undefined;
          if (v !== undefined) return this.replaceResponse(controller, v);
          dropLength();
          if (!this.writeUpstreamHead(this.ctx.response!)) return;
          for (const f of queued) f();
          controller.resume();
        },
        (err) => {
          this.queued = undefined;
          controller.abort(err);
          if (queued.length) this.fail(err);
        },
      );
    } else if (r !== undefined) this.replaceResponse(controller, r);
    else {
      dropLength();
      this.writeUpstreamHead(this.ctx.response);
    }
  }

  /** The response went out as its head alone (the upstream's ended with its head). */
  private headOnly = false;

  /** An upstream response that ended with its head goes out the same way over HTTP/2 (gRPC trailers-only). */
  private writeUpstreamHead(head: ResponseHead): boolean {
    if (endedWithHead(this.controller) && this.chain!.onResponseBody.length === 0 && respondHeadOnly(this.res, head.status, head.headers)) {
      this.headSent = this.headOnly = true;
      return true;
    }
    return this.writeHead(head);
  }

  private replaceResponse(controller: Dispatcher.DispatchController, reply: LocalReply): void {
    this.replaced = true;
    controller.abort(new WeirError('WEIR_ERR_CLIENT_ABORTED', 'response replaced by a filter'));
    this.sendLocal(reply, false);
  }

  replaced = false;

  /** Returns false (and ends the exchange) if Node refuses the head, e.g. an invalid header value. */
  private writeHead(head: ResponseHead): boolean {
    if (this.res.headersSent) return true;
    this.headSent = true;
    const res = this.res as ServerResponse;
    // Answered before the request body was all read: close after it (early-response.ts).
    if (mustCloseH1(this.req, this.body !== null)) head.headers['connection'] = 'close';
    try {
      res.writeHead(head.status, head.headers as Record<string, string | string[]>);
      return true;
    } catch (err) {
      this.headSent = false;
      this.core.logger.error({ id: this.ctx.id, err: (err as Error).message }, 'response head refused');
      if (this.controller && !this.controller.aborted) this.controller.abort(err as Error);
      if (!this.res.headersSent) this.writeErrorOnce(new WeirError('WEIR_ERR_INTERNAL', 'the response head could not be written'));
      else this.abortClient(err);
      return false;
    }
  }

  private erroredHead = false;

  /** An error reply whose own head cannot fail; a second failure resets the stream. */
  private writeErrorOnce(err: WeirError): void {
    if (this.erroredHead) return this.abortClient(err);
    this.erroredHead = true;
    this.writeError(err);
  }

  /** Body events that arrived while async response-header hooks ran. */
  private queued: Array<() => void> | undefined;

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.retrying || this.replaced) return;
    if (this.queued) {
      this.queued.push(() => this.onResponseData(controller, chunk));
      return;
    }
    const chain = this.chain!;
    // undici can hand over empty chunks (a body read to EOF under an unknown Transfer-Encoding):
    // pausing on one re-delivers it at once, a loop that never yields.
    if (chunk.length === 0) return;
    if (chain.onResponseBody.length > 0) return this.responseBodyChunk(controller, chunk, false);
    this.ctx.bytesOut += chunk.length;
    const res = this.res as ServerResponse;
    if (!res.write(chunk)) {
      // Up to response-buffer-bytes wait in memory so the upstream connection is freed soon;
      // past it the upstream is paused, and the send timeout bounds the wait.
      this.watchSend();
      if (res.writableLength > this.snap.config.limits.responseBufferBytes) {
        controller.pause();
        res.once('drain', () => controller.resume());
      }
    }
  }

  private pendingBody: Promise<void> = Promise.resolve();

  private responseBodyChunk(controller: Dispatcher.DispatchController, chunk: Uint8Array, end: boolean): void {
    const chain = this.chain!;
    const limit = chain.responseBufferLimit;
    if (limit !== undefined) {
      // buffered mode: collect, run once at the end
      (this.responseBodyBuf ??= []).push(chunk);
      this.responseBodyLen += chunk.length;
      if (this.responseBodyLen > limit) {
        controller.abort(new WeirError('WEIR_ERR_UPSTREAM_PROTOCOL', `response body exceeds the buffering limit of ${limit} bytes`));
        return;
      }
      if (!end) return;
      chunk = Buffer.concat(this.responseBodyBuf, this.responseBodyLen);
    }
    controller.pause();
    this.pendingBody = this.pendingBody.then(async () => {
      const out = await runBodyHooks(chain.onResponseBody, 'onResponseBody', this.ctx, { data: chunk, end }, this.core.logger);
      const bytes = out instanceof Uint8Array ? out : EMPTY;
      this.ctx.bytesOut += bytes.length;
      const res = this.res as ServerResponse;
      if (bytes.length && !res.write(bytes) && !end) {
        this.watchSend();
        // As without body filters: past response-buffer-bytes the origin stays paused until the client drains.
        if (res.writableLength > this.snap.config.limits.responseBufferBytes) await new Promise<void>((resolve) => {
          const go = (): void => {
            res.off('drain', go);
            res.off('close', go);
            resolve();
          };
          res.on('drain', go);
          res.on('close', go);
        });
      }
      if (end) this.endResponse(undefined);
      else controller.resume();
    }).catch((err) => {
      if (end) this.abortClient(err);
      else controller.abort(err);
    });
  }

  onResponseEnd(controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    this.releaseTarget();
    this.trace?.endAttempt(this.upstreamStatus, undefined);
    if (this.retrying || this.replaced) return;
    if (this.queued) {
      this.queued.push(() => this.onResponseEnd(controller, trailers));
      return;
    }
    if (this.chain!.onResponseBody.length > 0) {
      setResponseTrailers(this.ctx, trailers);
      return this.responseBodyChunk(controller, EMPTY, true);
    }
    this.endResponse(trailers);
  }

  private endResponse(trailers: Record<string, string | string[] | undefined> | undefined): void {
    const res = this.res as ServerResponse;
    if (this.headOnly) return this.finish();
    if (trailers && Object.keys(trailers).length > 0) res.addTrailers(trailers as Record<string, string>);
    res.end();
    this.finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    this.addWait(performance.now());
    if (this.tickets !== undefined) {
      const w = classifyUpstreamError(error);
      this.settleBreakers(w.source === 'upstream' && w.code !== 'WEIR_ERR_CLIENT_ABORTED' ? false : undefined);
    }
    this.releaseTarget();
    if (this.replaced) return;
    if (this.retrying) {
      this.retrying = false;
      return this.retry();
    }
    if (this.finished) return;
    const werr = classifyUpstreamError(error);
    this.trace?.endAttempt(this.upstreamStatus, werr.code);
    this.upstreamStatus = undefined;
    const connectFailure = werr.code === 'WEIR_ERR_UPSTREAM_CONNECT';
    const target = this.target;
    if (werr.source === 'upstream' && target && werr.code !== 'WEIR_ERR_CLIENT_ABORTED') {
      const m = this.core.metrics;
      const up = this.upstreamRef!.name;
      m.targetErrors.child(up, target.address, werr.code).value++;
      const was = target.ejected;
      target.recordFailure(connectFailure || werr.code === 'WEIR_ERR_UPSTREAM_TIMEOUT');
      // Without outlier-detection, recordFailure ejects after repeated connect failures.
      if (!was && target.ejected) m.targetEjections.child(up, target.address).value++;
      this.observeOutlier(target, undefined);
    }
    if (!this.headSent && this.retryableError(werr) && this.canRetry()) return this.retry();
    if (this.headSent) return this.abortClient(werr);
    this.fail(werr);
  }

  /** Tells outlier detection one attempt's status (undefined: no response), counting an ejection it causes. */
  private observeOutlier(target: Target, status: number | undefined): void {
    const up = this.upstreamRef!;
    if (up.outlier === undefined) return;
    const was = target.ejected;
    up.observe(target, status);
    if (!was && target.ejected) this.core.metrics.targetEjections.child(up.name, target.address).value++;
  }

  /** This attempt's wait is already in ctx.upstreamMs (its head came, or it failed). */
  private waited = false;

  /** Adds the attempt in flight's dispatch-to-now to ctx.upstreamMs, once per attempt. */
  private addWait(now: number): void {
    if (this.waited || this.ctx.attempts === 0) return;
    this.waited = true;
    this.ctx.upstreamMs = (this.ctx.upstreamMs ?? 0) + (now - this.dispatchedAt);
  }

  /** True while this exchange counts in its target's and upstream's in-flight numbers. */
  private holding = false;

  /** Ends this exchange's count in its target's and upstream's in-flight numbers. */
  releaseTarget(): void {
    clearTimeout(this.attemptTimer);
    this.settleBreakers(undefined);
    if (this.clientCounted) {
      this.clientCounted = false;
      this.core.admission.leaveClient(this.ctx.client.address);
    }
    if (!this.holding) return;
    this.holding = false;
    const target = this.target!;
    target.end();
    this.upstreamRef!.inFlight--;
    this.core.admission.freed(target, this.upstreamRef!.config.connectionPool.maxConnections);
  }

  /** Send timeout (upstream `timeouts write`): no progress towards the client for that long ends the exchange. */
  private watchSend(): void {
    const ms = this.upstreamRef!.config.timeouts.writeMs;
    watchSend(this.res as ServerResponse, ms, () => {
      const err = new WeirError('WEIR_ERR_SEND_TIMEOUT', `no progress sending the response for ${ms} ms`);
      this.core.logger.info({ id: this.ctx.id, client: this.ctx.client.address, code: err.code }, 'send timeout: the client does not read');
      if (this.finished) this.core.metrics.errors.labels(err.code).inc();
      else this.ctx.error = err;
      if (this.controller && !this.controller.aborted) this.controller.abort(err);
      this.res.destroy();
      this.finish();
    });
  }

  // ── retries ───────────────────────────────────────────────────────────────────────

  private retryableError(err: WeirError): boolean {
    const on = this.route!.config.policies.retry.retryOn;
    switch (err.code) {
      case 'WEIR_ERR_UPSTREAM_CONNECT':
        return on.includes('connect-failure');
      case 'WEIR_ERR_UPSTREAM_RESET':
        return on.includes('reset');
      case 'WEIR_ERR_UPSTREAM_TIMEOUT':
        return on.includes('timeout') && !this.routeExpired;
      default:
        return false;
    }
  }

  private canRetry(): boolean {
    const policy = this.route!.config.policies.retry;
    if (this.attempt >= policy.maxAttempts) return false;
    if (!IDEMPOTENT.has(this.ctx.request.method) || !this.bodyReplayable) return false;
    const up = this.upstreamRef!;
    // Envoy-style budget: retries in flight at most budget% of active requests, with a floor.
    const allowed = Math.max(policy.minRetryConcurrency, Math.floor((up.inFlight * policy.budgetPercent) / 100));
    if (up.retriesInFlight >= allowed) {
      this.core.metrics.errors.labels('WEIR_ERR_RETRY_BUDGET').inc();
      return false;
    }
    return true;
  }

  private retry(): void {
    const up = this.upstreamRef!;
    const policy = this.route!.config.policies.retry;
    (this.tried ??= new Set()).add(this.target!.index);
    if (this.tried.size >= up.targets.length) this.tried.clear();
    this.core.metrics.retries.labels(up.name).inc();
    up.retriesInFlight++;
    this.isRetry = true;
    // Exponential backoff with full jitter.
    const cap = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** (this.attempt - 1));
    const delay = Math.random() * cap;
    setTimeout(() => {
      up.retriesInFlight--;
      this.controller = undefined;
      this.selectAndDispatch();
    }, delay);
  }

  // ── local replies, errors, the end ────────────────────────────────────────────────

  localReply(reply: LocalReply): void {
    // A filter that denies (auth, WAF) is audited (observability/audit.ts).
    if (reply.status === 401 || reply.status === 403) this.auditDenial(reply.status);
    this.sendLocal(reply, true);
  }

  private auditDenial(status: number): void {
    const audit = this.core.audit;
    if (!audit.enabled) return;
    const ctx = this.ctx;
    audit.denial({ requestId: ctx.id, client: ctx.client.address, route: ctx.routeName || '(none)', method: ctx.request.method, host: ctx.request.authority, path: ctx.request.path, status });
  }

  /** `audit.<name>` properties plugins set become audit lines (observability/audit.ts). */
  private auditPluginEntries(): void {
    const ctx = this.ctx;
    this.core.audit.pluginEntries(ctx.properties, { requestId: ctx.id, client: ctx.client.address, route: ctx.routeName || '(none)', method: ctx.request.method, host: ctx.request.authority, path: ctx.request.path });
  }

  /** Sends a reply made by the proxy; response header filters see it too (Envoy's local replies do). */
  sendLocal(reply: LocalReply, runFilters: boolean): void {
    if (this.finished) return;
    if (this.res.headersSent) return this.abortClient(new WeirError('WEIR_ERR_INTERNAL', 'local reply after the response started'));
    const body = reply.body === undefined ? EMPTY : typeof reply.body === 'string' ? Buffer.from(reply.body) : reply.body;
    const headers: HeaderMap = Object.create(null);
    if (reply.headers) for (const k in reply.headers) headers[k.toLowerCase()] = reply.headers[k];
    headers['content-length'] = String(reply.stream ? reply.stream.length : body.length);
    if (reply.stream) this.ctx.properties.set(LOCAL_STREAM_PROPERTY, '1');
    this.ctx.response = { status: reply.status, headers };
    const chain = this.chain;
    if (runFilters && chain && chain.onResponseHeaders.length > 0) {
      try {
        const r = runHeaderHooks(chain.onResponseHeaders, 'onResponseHeaders', this.ctx, this.core.logger);
        if (isPromise(r)) {
          r.then(() => this.writeLocal(body, reply.stream), (err) => this.writeError(err));
          return;
        }
      } catch (err) {
        return this.writeError(err);
      }
    }
    this.writeLocal(body, reply.stream);
  }

  private writeLocal(body: Uint8Array, stream?: LocalReply['stream']): void {
    if (this.finished) return;
    const head = this.ctx.response!;
    const chain = this.chain;
    if (stream && this.ctx.request.method !== 'HEAD') {
      head.headers['x-request-id'] ??= this.ctx.id;
      if (!this.writeHead(head)) return;
      const src = stream.open();
      src.on('data', (c: Buffer) => (this.ctx.bytesOut += c.length));
      pipeline(src, this.res as ServerResponse, (err) => (err ? this.abortClient(err) : this.finish()));
      return;
    }
    if (chain && !stream && this.ctx.request.method !== 'HEAD') {
      for (const p of chain.phases) {
        if (!p.transformLocal) continue;
        const b = p.transformLocal(this.ctx, body);
        if (b !== body) head.headers['content-length'] = String((body = b).length);
      }
    }
    head.headers['x-request-id'] ??= this.ctx.id;
    if (this.grpc && grpcLocalReply(this.res, head, body)) return this.finish();
    if (!this.writeHead(head)) return;
    this.ctx.bytesOut += body.length;
    (this.res as ServerResponse).end(this.ctx.request.method === 'HEAD' ? undefined : body);
    this.finish();
  }

  /** Ends the exchange with an error reply (or a reset if the response already started). */
  fail(err: unknown): void {
    if (this.finished) return;
    const werr = isWeirError(err) ? err : new WeirError('WEIR_ERR_INTERNAL', (err as Error)?.message, { cause: err });
    if (werr.source === 'upstream' && !this.res.headersSent && this.chain) {
      // A host built-in may answer instead (the cache's stale-if-error).
      for (const p of this.chain.phases) {
        const r = p.recover?.(this.ctx, werr);
        if (r) return this.sendLocal(r, false);
      }
    }
    this.ctx.error = werr;
    if (this.res.headersSent) return this.abortClient(werr);
    this.writeError(werr);
  }

  private writeError(err: unknown): void {
    const werr = isWeirError(err) ? err : new WeirError('WEIR_ERR_INTERNAL', (err as Error)?.message, { cause: err });
    this.ctx.error = werr;
    const status = errorStatus(werr.code);
    if (werr.source === 'downstream') this.core.logger.debug({ id: this.ctx.id, code: werr.code, err: werr.message, detail: werr.detail }, 'request refused');
    if (this.grpc) {
      this.ctx.response = { status: 200, headers: grpcErrorHeaders(werr, this.ctx.id) };
      return this.writeLocal(EMPTY);
    }
    // The client gets the code and the table's message; the detail goes to the log only.
    const { body, contentType } = errorReply(werr.code, this.ctx.id, this.route?.config.errorFormat ?? 'json');
    this.ctx.response = { status, headers: { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)), 'x-request-id': this.ctx.id } };
    if (status === 413 || werr.source === 'downstream') {
      // The rest of the request can't be trusted to be read: close after replying.
      if (this.req.httpVersionMajor === 1) this.ctx.response.headers['connection'] = 'close';
    }
    this.writeLocal(Buffer.from(body));
  }

  private abortClient(err: unknown): void {
    if (this.finished) return;
    this.ctx.error ??= isWeirError(err) ? err : new WeirError('WEIR_ERR_INTERNAL', (err as Error)?.message);
    // A gRPC response under way ends with its status in trailers, not a bare reset.
    if (this.grpc && !this.headOnly && endWithGrpcStatus(this.res, this.ctx.error)) return this.finish();
    this.res.destroy();
    this.finish();
  }

  private readonly onClientClose = (): void => {
    if (this.finished) return;
    // The client went away before we finished: stop the upstream call.
    const err = new WeirError('WEIR_ERR_CLIENT_ABORTED');
    this.ctx.error = err;
    if (this.controller && !this.controller.aborted) this.controller.abort(err);
    this.finish();
  };

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    clearTimeout(this.attemptTimer);
    if (this.body !== null) endUnreadH2Body(this.req);
    this.cancelWait?.();
    this.settleBreakers(undefined);
    this.stopBodyWatch?.();
    if (this.clientCounted) {
      this.clientCounted = false;
      this.core.admission.leaveClient(this.ctx.client.address);
    }
    this.core.finish(this);
    if (this.core.audit.enabled && this.ctx.properties.size > 0) this.auditPluginEntries();
    const chain = this.chain;
    if (chain && chain.onLog.length > 0) runLogHooks(chain.onLog, this.ctx, this.core.logger);
    if (this.balancer) runLogHooks([this.balancer], this.ctx, this.core.logger);
  }
}
