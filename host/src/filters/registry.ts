/**
 * Filter types → factories. Built-in TypeScript filters register here; the plugin runtime
 * registers `wasm` and the first-party plugin types (rate-limit, geo, …) the same way.
 */
import type { FilterConfig, UpstreamConfig, WeirConfig } from '../config/types.ts';
import type { Phase } from '../pipeline/phases.ts';
import type { Logger } from '../observability/logger.ts';
import { headersFilter } from './headers.ts';
import { urlRewriteFilter } from './url-rewrite.ts';
import { grpcWebFilter } from './grpc-web.ts';

export interface FilterBuildEnv {
  readonly logger: Logger;
  /** The whole config being compiled (plugins, upstreams…). */
  readonly config: WeirConfig;
}

export type FilterFactory = (cfg: FilterConfig, env: FilterBuildEnv) => Phase | Promise<Phase>;

export class FilterRegistry {
  private readonly factories = new Map<string, FilterFactory>();
  private readonly asserted = new Map<string, readonly string[]>();
  /** Optional rewrite of a route's phases before its chain is built (merges worker plugins). */
  combine: ((phases: readonly Phase[]) => Phase[] | Promise<Phase[]>) | undefined;
  /** The select-upstream phase implementing an upstream's `load-balancing` (undefined: built-in round robin). */
  balancer: ((up: UpstreamConfig, env: FilterBuildEnv) => Promise<Phase | undefined>) | undefined;

  constructor() {
    this.register('url-rewrite', urlRewriteFilter);
    this.register('headers', headersFilter);
    this.register('grpc-web', grpcWebFilter);
  }

  /**
   * Registers a filter type. `assertsRequestHeaders`: request headers (lower case) the filter
   * sets for the upstream to believe (geo's x-geoip-country, an auth subject); Weir removes
   * them from every client request before any filter runs, so only the filter can set them.
   */
  register(type: string, factory: FilterFactory, opts: { assertsRequestHeaders?: readonly string[] } = {}): void {
    this.factories.set(type, factory);
    if (opts.assertsRequestHeaders?.length) this.asserted.set(type, opts.assertsRequestHeaders.map((h) => h.toLowerCase()));
  }

  /** The request headers filters of `type` assert (see register). */
  asserts(type: string): readonly string[] {
    return this.asserted.get(type) ?? [];
  }

  get(type: string): FilterFactory | undefined {
    return this.factories.get(type);
  }

  types(): string[] {
    return [...this.factories.keys()];
  }
}
