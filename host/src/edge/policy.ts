/**
 * A listener's edge rules, compiled once per listener and attached to each request the
 * listener hands to the proxy core, so the exchange applies the rules of the listener the
 * request came in on.
 */
import type { ListenerEdgeConfig } from '../config/types.ts';
import { DEFAULT_PATH_POLICY, type PathPolicy } from './path.ts';

export interface EdgePolicy {
  readonly path: PathPolicy;
}

const kEdge = Symbol('weir.edge');

export const DEFAULT_EDGE: EdgePolicy = Object.freeze({ path: DEFAULT_PATH_POLICY });

/** Compiles a listener's edge config. */
export function compileEdge(cfg: ListenerEdgeConfig): EdgePolicy {
  return Object.freeze({ path: Object.freeze({ ...cfg.pathNormalization }) });
}

/** Marks `req` as received under `policy`. */
export function bindEdge(req: object, policy: EdgePolicy): void {
  (req as { [kEdge]?: EdgePolicy })[kEdge] = policy;
}

/** The policy of the listener `req` came in on (defaults for requests made elsewhere). */
export function edgeOf(req: object): EdgePolicy {
  return (req as { [kEdge]?: EdgePolicy })[kEdge] ?? DEFAULT_EDGE;
}
