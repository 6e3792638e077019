/**
 * The `exchange` host interface (ABI 0.2): a hook reads the request and response it runs for
 * through host calls instead of receiving the whole head as arguments, so the host copies
 * only what the plugin reads (proxy-wasm's get-header model). Measured in bench/micro.ts: a
 * hook that reads one header and sets one went from lowering ~20 strings per call to two.
 *
 * The functions read `scope.exchange`, which the runtime sets around each hook call (the
 * request's context inline; a view rebuilt from the shipped head in a worker thread).
 */
import type { HeaderMap, RequestContext } from '../../../host/src/pipeline/phases.ts';
import type { HostImports } from '../../generated/codec.ts';
import type * as W from '../../generated/types.ts';
import { headerList, propertyList, valueFromWire, valueToWire } from './convert.ts';

/** What the exchange functions read: the part of a request's context a plugin may see. */
export interface ExchangeView {
  readonly request: {
    readonly method: string;
    readonly scheme: string;
    readonly authority: string;
    readonly path: string;
    readonly query: string;
    readonly headers: HeaderMap;
    readonly httpVersion: string;
  };
  readonly client: { readonly address: string; readonly port: number };
  readonly routeName: string;
  readonly properties: ReadonlyMap<string, string>;
  readonly response: { readonly status: number; readonly headers: HeaderMap } | undefined;
}

/** The request head as it crosses to a worker thread (structured-cloned). */
export interface WireRequestHead {
  method: string;
  scheme: string;
  authority: string;
  path: string;
  query: string;
  headers: W.Header[];
  clientAddress: string;
  clientPort: number;
  routeName: string;
  properties: W.Property[];
  httpVersion: string;
}

/** The response head as it crosses to a worker thread. */
export interface WireResponseHead {
  status: number;
  headers: W.Header[];
}

export function wireRequestHead(ctx: RequestContext): WireRequestHead {
  const r = ctx.request;
  return {
    method: r.method, scheme: r.scheme, authority: r.authority, path: r.path, query: r.query,
    headers: headerList(r.headers), clientAddress: ctx.client.address, clientPort: ctx.client.port,
    routeName: ctx.routeName, properties: propertyList(ctx.properties), httpVersion: r.httpVersion,
  };
}

export function wireResponseHead(ctx: RequestContext): WireResponseHead {
  const r = ctx.response!;
  return { status: r.status, headers: headerList(r.headers) };
}

function headerMap(list: readonly W.Header[]): HeaderMap {
  const out = Object.create(null) as HeaderMap;
  for (const h of list) {
    const v = valueToWire(h.value);
    const prev = out[h.name];
    out[h.name] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

/** A view over a head shipped to a worker thread. */
export function viewOfWire(head: WireRequestHead, response: WireResponseHead | undefined): ExchangeView {
  return {
    request: { method: head.method, scheme: head.scheme, authority: head.authority, path: head.path, query: head.query, headers: headerMap(head.headers), httpVersion: head.httpVersion },
    client: { address: head.clientAddress, port: head.clientPort },
    routeName: head.routeName,
    properties: new Map(head.properties.map((p) => [p.key, p.value])),
    response: response ? { status: response.status, headers: headerMap(response.headers) } : undefined,
  };
}

type ExchangeFunctions = Pick<HostImports,
  'requestMethod' | 'requestScheme' | 'requestAuthority' | 'requestPath' | 'requestQuery' | 'requestHeader' | 'requestHeaderValues' | 'requestHeaders'
  | 'clientAddress' | 'clientPort' | 'routeName' | 'httpVersion' | 'requestProperty' | 'requestProperties' | 'responseStatus' | 'responseHeader' | 'responseHeaderValues' | 'responseHeaders'>;

/** Node keeps header names lowercase; a plugin may ask in any case. */
const UPPER = /[A-Z]/;
const lower = (name: string): string => (UPPER.test(name) ? name.toLowerCase() : name);

// Type checks, not `!== undefined`: a name like `toString` must not find Object.prototype's.
function first(headers: HeaderMap | undefined, name: string): string | undefined {
  if (headers === undefined) return undefined;
  const v = headers[lower(name)];
  if (typeof v === 'string') return valueFromWire(v);
  return Array.isArray(v) && v.length > 0 ? valueFromWire(v[0]!) : undefined;
}

function all(headers: HeaderMap | undefined, name: string): string[] {
  if (headers === undefined) return [];
  const v = headers[lower(name)];
  if (typeof v === 'string') return [valueFromWire(v)];
  return Array.isArray(v) ? v.map(valueFromWire) : [];
}

/** The exchange functions of one instance, reading whatever `scope.exchange` is during a call. */
export function exchangeImports(scope: { exchange?: ExchangeView | undefined }): ExchangeFunctions {
  return {
    requestMethod: () => scope.exchange?.request.method ?? '',
    requestScheme: () => scope.exchange?.request.scheme ?? '',
    requestAuthority: () => scope.exchange?.request.authority ?? '',
    requestPath: () => scope.exchange?.request.path ?? '',
    requestQuery: () => scope.exchange?.request.query ?? '',
    requestHeader: (name) => first(scope.exchange?.request.headers, name),
    requestHeaderValues: (name) => all(scope.exchange?.request.headers, name),
    requestHeaders: () => (scope.exchange ? headerList(scope.exchange.request.headers) : []),
    clientAddress: () => scope.exchange?.client.address ?? '',
    clientPort: () => scope.exchange?.client.port ?? 0,
    routeName: () => scope.exchange?.routeName ?? '',
    httpVersion: () => scope.exchange?.request.httpVersion ?? '',
    requestProperty: (key) => scope.exchange?.properties.get(key),
    requestProperties: () => (scope.exchange ? propertyList(scope.exchange.properties) : []),
    responseStatus: () => scope.exchange?.response?.status ?? 0,
    responseHeader: (name) => first(scope.exchange?.response?.headers, name),
    responseHeaderValues: (name) => all(scope.exchange?.response?.headers, name),
    responseHeaders: () => (scope.exchange?.response ? headerList(scope.exchange.response.headers) : []),
  };
}
