/**
 * First-party plugins behind built-in config keys: `type "rate-limit"` and `type "geo"`
 * filters, and an upstream's `load-balancing`. They are ordinary components
 * (plugins/NAME, built with the AssemblyScript SDK) on the same ABI users get; this module
 * only turns their config blocks into plugin configs.
 */
import { existsSync } from 'node:fs';
import { firstPartyPluginPath } from '../../../host/src/assets.ts';
import type { ConfigNode, FilterConfig, PluginConfig, UpstreamConfig } from '../../../host/src/config/types.ts';
import { WeirError } from '../../../host/src/errors.ts';

/** Load-balancing algorithms the lb plugin implements; the others fall back to round robin for now. */
export const LB_ALGORITHMS = new Set(['round_robin', 'p2c']);

/** Filter keys the host reads itself and the plugin never sees. */
const HOST_KEYS = new Set(['type', 'failure-mode', 'database-path']);

const BASE = { isolation: 'inline' as const, fuel: 10_000_000, memoryLimitBytes: 16 * 1024 * 1024, timeoutMs: 100, poolSize: 4 };

function pluginPath(name: string): string {
  const path = firstPartyPluginPath(name);
  if (!existsSync(path)) throw new WeirError('WEIR_ERR_PLUGIN_LOAD', `the first-party plugin ${name} is not built (${path}); run npm run build:plugins`);
  return path;
}

function node(name: string, value: string, loc: ConfigNode['loc']): ConfigNode {
  return { name, args: [value], props: {}, children: [], loc };
}

/** The plugin config of a `rate-limit` or `geo` filter: its block minus the host's keys. */
export function filterPluginConfig(filter: FilterConfig): PluginConfig {
  const config = [...filter.settings.children.filter((c) => !HOST_KEYS.has(c.name)), node('filter-name', filter.name, filter.loc)];
  const db = filter.settings.children.find((c) => c.name === 'database-path')?.args[0];
  const dbType = filter.settings.children.find((c) => c.name === 'database-type')?.args[0] ?? 'mmdb';
  return {
    ...BASE,
    name: `${filter.type}:${filter.name}`,
    path: pluginPath(filter.type),
    config,
    ...(filter.type === 'geo' && dbType === 'mmdb' && typeof db === 'string' ? { geoDatabase: db } : {}),
    loc: filter.loc,
  };
}

/** The lb plugin config for an upstream, or undefined when the upstream needs no balancer. */
export function balancerPluginConfig(up: UpstreamConfig): PluginConfig | undefined {
  // One target: nothing to choose, no plugin call on the hot path.
  if (up.targets.length < 2 || !LB_ALGORITHMS.has(up.loadBalancing)) return undefined;
  return { ...BASE, name: `lb:${up.loadBalancing}`, path: pluginPath('lb'), config: [node('algorithm', up.loadBalancing, up.loc)], loc: up.loc };
}
