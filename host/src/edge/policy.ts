/**
 * A listener's edge rules, compiled once per listener and attached to each request the
 * listener hands to the proxy core, so the exchange applies the rules of the listener the
 * request came in on.
 */
import type { ListenerEdgeConfig } from '../config/types.ts';
import { TrustedProxies } from './client.ts';
import { DEFAULT_PATH_POLICY, type PathPolicy } from './path.ts';

export interface EdgePolicy {
  readonly path: PathPolicy;
  /** undefined: no peer is trusted; forwarding headers are dropped. */
  readonly trust: TrustedProxies | undefined;
  readonly trustIncomingRequestId: boolean;
  /** The route for requests no route matches (the listener's `default-route`). */
  readonly defaultRoute: string | undefined;
}

const kEdge = Symbol('weir.edge');

export const DEFAULT_EDGE: EdgePolicy = Object.freeze({ path: DEFAULT_PATH_POLICY, trust: undefined, trustIncomingRequestId: true, defaultRoute: undefined });

/** Compiles a listener's edge config. */
export function compileEdge(cfg: ListenerEdgeConfig): EdgePolicy {
  return Object.freeze({
    path: Object.freeze({ ...cfg.pathNormalization }),
    trust: cfg.trustedProxies.length > 0 ? new TrustedProxies(cfg.trustedProxies) : undefined,
    trustIncomingRequestId: cfg.trustIncomingRequestId,
    defaultRoute: cfg.defaultRoute,
  });
}

/** Marks `req` as received under `policy`. */
export function bindEdge(req: object, policy: EdgePolicy): void {
  (req as { [kEdge]?: EdgePolicy })[kEdge] = policy;
}

/** The policy of the listener `req` came in on (defaults for requests made elsewhere). */
export function edgeOf(req: object): EdgePolicy {
  return (req as { [kEdge]?: EdgePolicy })[kEdge] ?? DEFAULT_EDGE;
}
