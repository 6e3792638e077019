/**
 * A compiled config snapshot: everything a request needs, built once per (re)load.
 * A request pins the snapshot it started with, so a reload never changes a request midway.
 */
import type { WeirConfig } from '../config/types.ts';
import type { Router } from '../router/router.ts';
import type { Upstream } from '../upstream/upstream.ts';
import type { Chain } from '../pipeline/chain.ts';
import type { Phase } from '../pipeline/phases.ts';
import type { Tracing } from '../observability/tracing.ts';

export interface Snapshot {
  readonly generation: number;
  readonly config: WeirConfig;
  readonly router: Router;
  readonly upstreams: ReadonlyMap<string, Upstream>;
  /** Route name → its filter chain. */
  readonly chains: ReadonlyMap<string, Chain>;
  /** Upstream name → the plugin phase that balances it (absent: built-in round robin). */
  readonly balancers: ReadonlyMap<string, Phase>;
  /** Request headers some configured filter type asserts (x-geoip-country…): removed from every client request. */
  readonly assertedHeaders: readonly string[];
  /** Route name → its path prefixes (for prefix rewrites). */
  readonly prefixes: ReadonlyMap<string, readonly string[]>;
  /** The tracer of `observability { tracing }`, shared by snapshots with the same block. */
  readonly tracing: Tracing | undefined;
}
