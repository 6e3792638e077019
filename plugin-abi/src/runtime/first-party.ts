/**
 * First-party plugins behind built-in config keys: filters of the FIRST_PARTY_FILTERS types
 * (`type "rate-limit"`, `type "jwt"`, …), and an upstream's `load-balancing`. They are ordinary components
 * (plugins/NAME, built with the AssemblyScript SDK) on the same ABI users get; this module
 * only turns their config blocks into plugin configs.
 */
import { existsSync, readFileSync } from 'node:fs';
import { firstPartyPluginPath } from '../../../host/src/assets.ts';
import type { ConfigNode, FilterConfig, PluginConfig, UpstreamConfig } from '../../../host/src/config/types.ts';
import type { WafBody } from '../../../host/src/config/waf.ts';
import { WeirError } from '../../../host/src/errors.ts';
import type { Phase } from '../../../host/src/pipeline/phases.ts';
import { NO_BODY } from '../../../host/src/pipeline/phases.ts';

/** Load-balancing algorithms the lb plugin implements (plugins/lb; the config refuses the others). */
export const LB_ALGORITHMS = new Set([
  'round_robin', 'p2c', 'ip_hash', 'consistent_hash', 'maglev', 'locality_aware',
  'random', 'weighted_random', 'least_connections', 'weighted_least_connections', 'peak_ewma', 'least_latency', 'adaptive', 'least_tokens',
  'subset',
]);

/** Filter types run by a first-party plugin of the same name (plugins/TYPE). */
export const FIRST_PARTY_FILTERS: ReadonlySet<string> = new Set(['rate-limit', 'geo', 'api-key', 'cors', 'waf', 'ip-filter', 'basic-auth', 'jwt']);

/**
 * Keys naming a file a plugin needs the contents of (plugins read no files): the host reads
 * it and adds its text as the node's `text` property. A reload (SIGHUP, or the file changing:
 * see dataFiles) reads it again, and new contents make a new plugin config.
 */
const FILE_KEYS: Readonly<Record<string, readonly string[]>> = { 'api-key': ['keys-file'], 'basic-auth': ['htpasswd'], jwt: ['jwks-file'] };

/** Files the first-party filters of a config read (watched with the config files). */
export function dataFiles(filters: Iterable<FilterConfig>): string[] {
  const out: string[] = [];
  for (const f of filters) {
    for (const c of f.settings.children) if (FILE_KEYS[f.type]?.includes(c.name) && typeof c.args[0] === 'string') out.push(c.args[0]);
  }
  return out;
}

function withFileText(type: string, c: ConfigNode): ConfigNode {
  if (!FILE_KEYS[type]?.includes(c.name) || typeof c.args[0] !== 'string') return c;
  let text: string;
  try {
    text = readFileSync(c.args[0], 'utf8');
  } catch (err) {
    throw new WeirError('WEIR_ERR_CONFIG_FILE', `${c.name}: cannot read ${c.args[0]}: ${(err as Error).message}`, { detail: { loc: c.loc } });
  }
  return { ...c, props: { ...c.props, text } };
}

/** Filter keys the host reads itself and the plugin never sees. */
const HOST_KEYS = new Set(['type', 'failure-mode', 'database-path']);

const BASE = { isolation: 'inline' as const, fuel: 10_000_000, memoryLimitBytes: 16 * 1024 * 1024, timeoutMs: 100, poolSize: 4 };
/**
 * The WAF tokenizes whole bodies (up to max-body-inspection-bytes) in one call: a 1 MiB JSON body
 * of short unique values took 0.4–1.5 s of CPU on a loaded 2-core machine, so more fuel, time
 * and memory per call than the other plugins.
 */
const WAF_BUDGET = { fuel: 20_000_000_000, memoryLimitBytes: 128 * 1024 * 1024, timeoutMs: 5000 };

function pluginPath(name: string): string {
  const path = firstPartyPluginPath(name);
  if (!existsSync(path)) throw new WeirError('WEIR_ERR_PLUGIN_LOAD', `the first-party plugin ${name} is not built (${path}); run npm run build:plugins`);
  return path;
}

function node(name: string, value: string, loc: ConfigNode['loc']): ConfigNode {
  return { name, args: [value], props: {}, children: [], loc };
}

/** The plugin config of a first-party filter (FIRST_PARTY_FILTERS): its block minus the host's keys, files read. */
export function filterPluginConfig(filter: FilterConfig): PluginConfig {
  const config = [...filter.settings.children.filter((c) => !HOST_KEYS.has(c.name)).map((c) => withFileText(filter.type, c)), node('filter-name', filter.name, filter.loc)];
  const db = filter.settings.children.find((c) => c.name === 'database-path')?.args[0];
  const dbType = filter.settings.children.find((c) => c.name === 'database-type')?.args[0] ?? 'mmdb';
  return {
    ...BASE,
    ...(filter.type === 'waf' ? WAF_BUDGET : {}),
    name: `${filter.type}:${filter.name}`,
    path: pluginPath(filter.type),
    config,
    ...(filter.type === 'geo' && dbType === 'mmdb' && typeof db === 'string' ? { geoDatabase: db } : {}),
    // A JWKS fetch (http-callout, 3 s at most) counts against the hook's deadline; with a
    // jwks-url the plugin's on-tick refreshes the keys ahead of their max-age.
    ...(filter.type === 'jwt' ? { timeoutMs: 5000, ...(filter.settings.children.some((c) => c.name === 'jwks-url') ? { tickMs: 10_000 } : {}) } : {}),
    loc: filter.loc,
  };
}

/** The lb plugin config for an upstream, or undefined when the upstream needs no balancer. */
export function balancerPluginConfig(up: UpstreamConfig): PluginConfig | undefined {
  // One target: nothing to choose, no plugin call on the hot path.
  if (up.targets.length < 2 || !LB_ALGORITHMS.has(up.loadBalancing)) return undefined;
  // A hashing balancer builds its ring or table in the first call after the targets change
  // (a 65537-entry Maglev table: about 10 million fuel units); picks cost little.
  const budget = up.loadBalancing === 'maglev' || up.loadBalancing === 'consistent_hash' ? { fuel: 200_000_000 } : {};
  return { ...BASE, ...budget, name: `lb:${up.loadBalancing}`, path: pluginPath('lb'), config: [node('algorithm', up.loadBalancing, up.loc), node('hash-key', up.hashKey, up.loc), node('subset-header', up.subsetHeader, up.loc), ...labelNodes(up)], loc: up.loc };
}

/** `labels ADDRESS "k=v,…"` per labelled target, for the subset algorithm. */
function labelNodes(up: UpstreamConfig): ConfigNode[] {
  return up.targets.flatMap((t) => (t.labels === undefined ? [] : [{ name: 'labels', args: [t.address, t.labels], props: {}, children: [], loc: up.loc }]));
}

/**
 * A WAF filter's phase: its request body is buffered whole up to `max-body-inspection-bytes`
 * (a larger one is refused with 413, never passed uninspected); with `inspect-request-body
 * #false` it has no body hook, so nothing is buffered.
 */
export function wafPhase(phase: Phase, body: WafBody): Phase {
  if (!body.inspect) {
    const { onRequestBody: _, ...rest } = phase;
    return { ...rest, requestBody: NO_BODY };
  }
  return { ...phase, requestBody: { mode: 'buffered', limit: body.maxBytes } };
}
