/**
 * gRPC-aware replies. A gRPC client reads its result from `grpc-status` / `grpc-message`,
 * not from the HTTP status, so errors the proxy makes itself for a gRPC request are
 * gRPC-shaped: HTTP 200, trailers-only (one HEADERS frame with END_STREAM), the status
 * mapped from the Weir error. Once a gRPC response is under way, an error ends it with
 * trailers carrying the status instead of a bare stream reset.
 */
import http2 from 'node:http2';
import type { ErrorCode, WeirError } from '../errors.ts';
import type { HeaderMap } from '../pipeline/phases.ts';
import { errorMessage } from '../error-body.ts';

/** gRPC status codes used by the proxy (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** True for a gRPC request (content-type application/grpc, application/grpc+proto, ...). */
export function isGrpcRequest(headers: HeaderMap): boolean {
  const v = headers['content-type'];
  const ct = Array.isArray(v) ? v[0] : v;
  return ct !== undefined && /^application\/grpc(?:$|[+;])/i.test(ct);
}

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  WEIR_ERR_UPSTREAM_CONNECT: GrpcStatus.UNAVAILABLE,
  WEIR_ERR_UPSTREAM_RESET: GrpcStatus.UNAVAILABLE,
  WEIR_ERR_UPSTREAM_TLS: GrpcStatus.UNAVAILABLE,
  WEIR_ERR_NO_HEALTHY_TARGET: GrpcStatus.UNAVAILABLE,
  WEIR_ERR_CIRCUIT_OPEN: GrpcStatus.UNAVAILABLE,
  WEIR_ERR_OVERLOADED: GrpcStatus.UNAVAILABLE,
  WEIR_ERR_UPSTREAM_MAX_REQUESTS: GrpcStatus.UNAVAILABLE,
  WEIR_ERR_UPSTREAM_MAX_PENDING: GrpcStatus.UNAVAILABLE,
  WEIR_ERR_SHUTTING_DOWN: GrpcStatus.UNAVAILABLE,
  WEIR_ERR_UPSTREAM_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  WEIR_ERR_REQUEST_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  WEIR_ERR_QUEUE_TIMEOUT: GrpcStatus.DEADLINE_EXCEEDED,
  WEIR_ERR_BODY_TOO_LARGE: GrpcStatus.RESOURCE_EXHAUSTED,
  WEIR_ERR_HEADERS_TOO_LARGE: GrpcStatus.RESOURCE_EXHAUSTED,
  WEIR_ERR_CLIENT_LIMIT: GrpcStatus.RESOURCE_EXHAUSTED,
  WEIR_ERR_CLIENT_ABORTED: GrpcStatus.CANCELLED,
  WEIR_ERR_NO_ROUTE: GrpcStatus.UNIMPLEMENTED,
};

/** The gRPC status for an HTTP status (the gRPC spec's HTTP-to-gRPC mapping, plus 413/429/504). */
export function grpcStatusForHttp(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 408:
    case 504:
      return GrpcStatus.DEADLINE_EXCEEDED;
    case 413:
    case 429:
      return GrpcStatus.RESOURCE_EXHAUSTED;
    case 502:
    case 503:
      return GrpcStatus.UNAVAILABLE;
    default:
      return status >= 200 && status < 300 ? GrpcStatus.OK : GrpcStatus.UNKNOWN;
  }
}

/** The gRPC status for a Weir error. */
export function grpcStatusFor(err: WeirError): number {
  return BY_CODE[err.code] ?? grpcStatusForHttp(err.status || 500);
}

/** grpc-message is percent-encoded (gRPC over HTTP/2 spec): keep printable ASCII but '%'. */
export function encodeGrpcMessage(msg: string): string {
  let out = '';
  for (const b of Buffer.from(msg, 'utf8')) {
    out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Headers of a gRPC-shaped error reply (trailers-only: these are the whole response). */
export function grpcErrorHeaders(err: WeirError, requestId: string): HeaderMap {
  return {
    'content-type': 'application/grpc',
    'grpc-status': String(grpcStatusFor(err)),
    'grpc-message': encodeGrpcMessage(`${err.code}: ${errorMessage(err.code)}`),
    'x-request-id': requestId,
  };
}

/** The downstream HTTP/2 stream of a compat response, if it has one that can still respond. */
function h2Stream(res: unknown): http2.ServerHttp2Stream | undefined {
  const s = (res as { stream?: http2.ServerHttp2Stream }).stream;
  return s !== undefined && !s.destroyed && !s.headersSent ? s : undefined;
}

/**
 * Sends a response that is its head alone: one HEADERS frame with END_STREAM (gRPC's
 * trailers-only form). Only for HTTP/2 downstreams; returns false when it cannot (HTTP/1.1,
 * head already sent), and the caller answers the ordinary way.
 */
export function respondHeadOnly(res: unknown, status: number, headers: HeaderMap): boolean {
  const stream = h2Stream(res);
  if (stream === undefined) return false;
  const out: http2.OutgoingHttpHeaders = { ':status': status };
  for (const k in headers) out[k] = headers[k];
  (res as { statusCode: number }).statusCode = status;
  stream.respond(out, { endStream: true });
  return true;
}

/**
 * Ends a gRPC response already under way with trailers carrying `err`'s status (the gRPC
 * client then reports that status instead of a reset). Returns false when it cannot.
 */
export function endWithGrpcStatus(res: unknown, err: WeirError): boolean {
  const stream = (res as { stream?: http2.ServerHttp2Stream }).stream;
  const r = res as { writableEnded?: boolean; addTrailers?: (t: Record<string, string>) => void; end?: () => void };
  if (stream === undefined || stream.destroyed || r.writableEnded || !r.addTrailers || !r.end) return false;
  r.addTrailers({ 'grpc-status': String(grpcStatusFor(err)), 'grpc-message': encodeGrpcMessage(`${err.code}: ${errorMessage(err.code)}`) });
  r.end();
  return true;
}

/**
 * A local reply (a filter's `respond`, a refused path, a proxy error) to a gRPC request,
 * sent trailers-only when it is gRPC-shaped already (it carries grpc-status) or is an HTTP
 * error: then HTTP 200 with grpc-status mapped from the status (401 → UNAUTHENTICATED,
 * 403 → PERMISSION_DENIED, ...) and the body's text as grpc-message. Returns false for
 * other replies (a 2xx with a body, a redirect), which go out as they are.
 */
export function grpcLocalReply(res: unknown, head: { status: number; headers: HeaderMap }, body: Uint8Array): boolean {
  const h = head.headers;
  if (h['grpc-status'] !== undefined) {
    if (body.length !== 0) return false;
    return respondHeadOnly(res, head.status, { ...h, 'content-type': h['content-type'] ?? 'application/grpc' });
  }
  if (head.status < 400) return false;
  const out: HeaderMap = { ...h };
  delete out['content-length'];
  out['content-type'] = 'application/grpc';
  out['grpc-status'] = String(grpcStatusForHttp(head.status));
  const text = Buffer.from(body).toString('utf8').trim().slice(0, 512);
  out['grpc-message'] = encodeGrpcMessage(text || `HTTP ${head.status}`);
  if (!respondHeadOnly(res, 200, out)) return false;
  head.status = 200;
  head.headers = out;
  return true;
}

/**
 * A request the listener refuses before routing (strict.ts: too many headers, bad
 * :authority...) answered gRPC-shaped when it is a gRPC request over HTTP/2. Returns false
 * for other requests, which get the JSON error reply.
 */
export function refuseGrpc(req: { httpVersionMajor: number; headers: HeaderMap }, res: unknown, err: WeirError, requestId: string): boolean {
  if (req.httpVersionMajor !== 2 || !isGrpcRequest(req.headers)) return false;
  return respondHeadOnly(res, 200, grpcErrorHeaders(err, requestId));
}
