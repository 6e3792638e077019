/**
 * Filter types → factories. Built-in TypeScript filters register here; the plugin runtime
 * registers `wasm` and the first-party plugin types (rate-limit, geo, …) the same way.
 */
import type { FilterConfig, UpstreamConfig, WeirConfig } from '../config/types.ts';
import type { Phase } from '../pipeline/phases.ts';
import type { Logger } from '../observability/logger.ts';
import { headersFilter } from './headers.ts';
import { urlRewriteFilter } from './url-rewrite.ts';

export interface FilterBuildEnv {
  readonly logger: Logger;
  /** The whole config being compiled (plugins, upstreams…). */
  readonly config: WeirConfig;
}

export type FilterFactory = (cfg: FilterConfig, env: FilterBuildEnv) => Phase | Promise<Phase>;

export class FilterRegistry {
  private readonly factories = new Map<string, FilterFactory>();
  /** Optional rewrite of a route's phases before its chain is built (merges worker plugins). */
  combine: ((phases: readonly Phase[]) => Phase[]) | undefined;
  /** The select-upstream phase implementing an upstream's `load-balancing` (undefined: built-in round robin). */
  balancer: ((up: UpstreamConfig, env: FilterBuildEnv) => Promise<Phase | undefined>) | undefined;

  constructor() {
    this.register('url-rewrite', urlRewriteFilter);
    this.register('headers', headersFilter);
  }

  register(type: string, factory: FilterFactory): void {
    this.factories.set(type, factory);
  }

  get(type: string): FilterFactory | undefined {
    return this.factories.get(type);
  }

  types(): string[] {
    return [...this.factories.keys()];
  }
}
