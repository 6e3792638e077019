/**
 * Which failure mode a filter runs with on a route: its own `failure-mode` when its block
 * writes one, otherwise the route's `policies failure-mode`. One filter used by routes with
 * different defaults gets one phase per mode (see ProxyCore.compile).
 */
import type { FilterConfig, RouteConfig } from '../config/types.ts';

/** The filter config as it runs on `route` (the same object when nothing changes). */
export function filterOnRoute(filter: FilterConfig, route: RouteConfig): FilterConfig {
  if (!filter.failureModeFromRoute || filter.failureMode === route.policies.failureMode) return filter;
  return { ...filter, failureMode: route.policies.failureMode };
}
