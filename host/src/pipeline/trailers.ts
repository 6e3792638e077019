/**
 * The upstream response's trailers, for filters that rewrite the body (gRPC-Web moves them
 * into the body). The exchange records them just before the last on-response-body call.
 */
import type { RequestContext } from './phases.ts';

const trailers = new WeakMap<RequestContext, Record<string, string | string[] | undefined>>();

/** Records the trailers the upstream ended its response with. */
export function setResponseTrailers(ctx: RequestContext, t: Record<string, string | string[] | undefined>): void {
  trailers.set(ctx, t);
}

/** The upstream's trailers once the response body has ended (undefined before, or none). */
export function responseTrailers(ctx: RequestContext): Record<string, string | string[] | undefined> | undefined {
  return trailers.get(ctx);
}
