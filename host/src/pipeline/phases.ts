/**
 * The request pipeline's phases, declared once as data. A built-in TypeScript filter and a
 * WASM plugin both implement `Phase`; the pipeline does not know which is which.
 *
 *   client ─► on-request-headers ─► on-request-body ─► select-upstream ─► upstream
 *                                                                          │
 *   client ◄─ on-response-body ◄── on-response-headers ◄──────────────────┘
 *   on-log always runs last, with the error if any.
 */
import type { WeirError } from '../errors.ts';
import type { RequestSpan } from '../observability/tracing.ts';

export interface PhaseSpec {
  /** WIT name of the hook. */
  readonly name: string;
  /** The `Phase` method implementing it. */
  readonly method: 'onRequestHeaders' | 'onRequestBody' | 'selectUpstream' | 'onResponseHeaders' | 'onResponseBody' | 'onLog';
  /** Request phases run the route's chain in order; response phases in reverse. */
  readonly order: 'forward' | 'reverse';
  readonly doc: string;
}

export const PHASES = [
  {
    name: 'on-request-headers',
    method: 'onRequestHeaders',
    order: 'forward',
    doc: 'Runs once the request head is parsed and a route matched. May mutate the request head or reply locally. Default: continue.',
  },
  {
    name: 'on-request-body',
    method: 'onRequestBody',
    order: 'forward',
    doc: 'Runs per body chunk (or once with the whole body in buffered mode) only if the filter asked for the request body. May replace the chunk or reply locally. Default: pass the chunk on.',
  },
  {
    name: 'select-upstream',
    method: 'selectUpstream',
    order: 'forward',
    doc: 'Runs before each upstream attempt with the candidate targets and their live stats; the first filter returning an index chooses. Default: the upstream\'s load-balancing algorithm.',
  },
  {
    name: 'on-response-headers',
    method: 'onResponseHeaders',
    order: 'reverse',
    doc: 'Runs when the upstream response head arrives (or a local reply is built). May mutate status and headers or replace the response. Default: continue.',
  },
  {
    name: 'on-response-body',
    method: 'onResponseBody',
    order: 'reverse',
    doc: 'Runs per response body chunk only if the filter asked for the response body. May replace the chunk. Default: pass the chunk on.',
  },
  {
    name: 'on-log',
    method: 'onLog',
    order: 'reverse',
    doc: 'Always runs once the exchange ends, successful or not, and receives the error if any. Cannot change the response. Default: nothing.',
  },
] as const satisfies readonly PhaseSpec[];

export type PhaseName = (typeof PHASES)[number]['name'];

/** Header map: lowercased names; repeated headers as arrays (Node's convention). */
export type HeaderMap = Record<string, string | string[] | undefined>;

export interface RequestHead {
  method: string;
  /** 'http' | 'https' as seen by the client. */
  scheme: string;
  /** Host header or :authority. */
  authority: string;
  /** Path without the query string. */
  path: string;
  /** Query string without '?', '' if none. */
  query: string;
  headers: HeaderMap;
  /** '1.1' | '2' | '1.0' */
  readonly httpVersion: string;
}

export interface ResponseHead {
  status: number;
  headers: HeaderMap;
}

/** A reply produced by the proxy itself instead of the upstream. */
export interface LocalReply {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  /** Host built-ins only: a body streamed instead of `body` (static files), opened once the head is out (never for HEAD). */
  readonly stream?: { readonly length: number; open(): import('node:stream').Readable };
}

/** Set on ctx.properties while a local reply's body is a stream, which body transforms cannot rewrite. */
export const LOCAL_STREAM_PROPERTY = 'weir.local-stream';

/** Live view of one upstream target, handed to select-upstream. */
export interface TargetStats {
  readonly index: number;
  readonly address: string;
  readonly host: string;
  readonly port: number;
  readonly weight: number;
  readonly zone: string;
  readonly healthy: boolean;
  readonly inFlight: number;
  /** Exponentially weighted moving average of response latency, in ms (0 = no data yet). */
  readonly ewmaLatencyMs: number;
  readonly totalRequests: number;
  readonly totalFailures: number;
  /** Consecutive failures since the last success. */
  readonly consecutiveFailures: number;
  readonly lastFailureMs: number;
}

export interface ClientInfo {
  readonly address: string;
  readonly port: number;
  /** Subject of the verified client certificate (mTLS), if any. */
  readonly certSubject: string | undefined;
  readonly tls: boolean;
}

/** Per-request state shared by every phase of one exchange. */
export interface RequestContext {
  /** The request's trace, when `observability { tracing }` is on (observability/tracing.ts). */
  trace?: RequestSpan;
  readonly id: string;
  readonly startTime: number; // performance.now()
  readonly client: ClientInfo;
  readonly routeName: string;
  /** The path-prefix of the matched route that this path starts with (for prefix rewrites). */
  readonly routePrefix: string | undefined;
  readonly request: RequestHead;
  /** Set once the response head is known (upstream or local). */
  response: ResponseHead | undefined;
  /** The upstream and target chosen, once known. */
  upstream: { name: string; target: string | undefined } | undefined;
  /** Properties plugins may read and set (shared along the chain). */
  readonly properties: Map<string, string>;
  /** Per-filter per-request state (e.g. a WASM plugin's context handle). */
  readonly filterState: Map<Phase, unknown>;
  /** The error that ended the exchange, for on-log. */
  error: WeirError | undefined;
  /** Bytes received from the client / sent to the client (body only). */
  bytesIn: number;
  bytesOut: number;
  /** Upstream attempts started so far (0 until the first is sent; a retry adds one). */
  attempts: number;
  /** Index of the target the last attempt went to, once one was sent (select-upstream's `previous` on a retry). */
  previousTarget: number | undefined;
  /** Time spent waiting for the upstream over all attempts, in ms: dispatch to response head (or to the failure); undefined if none was sent. */
  upstreamMs: number | undefined;
  /** How long to hold the request before it goes upstream, in ms (plugins' `pause` decisions, summed and capped). */
  pauseMs: number;
}

/** Whether a filter wants bodies, and how. */
export type BodyMode =
  | { readonly mode: 'none' }
  | { readonly mode: 'stream' }
  | { readonly mode: 'buffered'; readonly limit: number };

export interface BodyChunk {
  readonly data: Uint8Array;
  /** True on the last chunk (in buffered mode, the only one). */
  readonly end: boolean;
}

/** What a header hook decides: continue (undefined) or reply locally. Mutations are applied to the context directly. */
export type HeadersResult = void | LocalReply;
/** What a body hook decides: undefined = pass the chunk on; bytes = replace it; LocalReply = stop (request body only). */
export type BodyResult = void | Uint8Array | LocalReply;

/**
 * A filter in a route's chain. Every hook is optional: a missing hook is never called
 * (the host asks a WASM plugin's `describe` which ones it implements). Hooks may return a
 * promise; the pipeline stays synchronous when none does.
 */
export interface Phase {
  /** The filter's name in the config. */
  readonly name: string;
  /** 'builtin:headers', 'wasm:add-header', … for logs and metrics. */
  readonly kind: string;
  /** What happens when the hook throws: 'closed' → the request fails; 'open' → the filter is skipped. */
  readonly failureMode: 'open' | 'closed';
  readonly requestBody: BodyMode;
  readonly responseBody: BodyMode;

  onRequestHeaders?(ctx: RequestContext): HeadersResult | Promise<HeadersResult>;
  onRequestBody?(ctx: RequestContext, chunk: BodyChunk): BodyResult | Promise<BodyResult>;
  /** Returns the chosen index into `targets`, or undefined to defer to the next filter / the upstream's algorithm. */
  selectUpstream?(ctx: RequestContext, targets: readonly TargetStats[]): number | undefined | Promise<number | undefined>;
  onResponseHeaders?(ctx: RequestContext): HeadersResult | Promise<HeadersResult>;
  onResponseBody?(ctx: RequestContext, chunk: BodyChunk): BodyResult | Promise<BodyResult>;
  onLog?(ctx: RequestContext): void | Promise<void>;
  /**
   * Host built-ins only (not a plugin hook): the upstream failed before any response head
   * (connect, reset, timeout). A reply returned here is sent instead of the error (the cache's stale-if-error).
   */
  recover?(ctx: RequestContext, err: WeirError): LocalReply | undefined;
  /**
   * Host built-ins only: rewrites the body of a local reply (a cache hit, an error) just before
   * it is written, after the response header hooks; may change ctx.response's headers (compression).
   */
  transformLocal?(ctx: RequestContext, body: Uint8Array): Uint8Array;
  /**
   * Host built-ins only: the response body hook reads the bytes and passes them on unchanged
   * (the cache copying a body it stores), so the origin's Content-Length stays on the response.
   */
  readonly keepsResponseLength?: boolean;
}

/** Builds the Phase for one `filter` block; registered per filter `type`. */
export type FilterFactory = (settings: import('../config/types.ts').FilterConfig, env: FilterEnv) => Phase;

/** What a filter factory may use from the host. */
export interface FilterEnv {
  readonly logger: import('pino').Logger;
}

export const NO_BODY: BodyMode = Object.freeze({ mode: 'none' });
