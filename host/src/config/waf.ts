/**
 * The WAF's config as the host reads it (the plugin, plugins/waf, reads the rest): how much
 * request body a `type "waf"` filter buffers and whether it is decompressed first, which routes
 * an exclusion takes the WAF off, and the top-level `waf {}` block as a filter on every route.
 */
import { DEFAULTS as D } from './defaults.ts';
import type { ConfigNode, FilterConfig } from './types.ts';
import { parseSize } from './values.ts';

/** Name of the filter the top-level `waf {}` block becomes. */
export const WAF_GLOBAL_FILTER = 'waf:global';

export interface WafBody {
  /** Bodies are buffered and inspected. */
  readonly inspect: boolean;
  /** Encoded bodies are decoded (within `maxBytes` and `maxRatio`) before inspection. */
  readonly decompress: boolean;
  readonly maxBytes: number;
  readonly maxRatio: number;
}

function child(n: ConfigNode | undefined, name: string): ConfigNode | undefined {
  return n?.children.findLast((c) => c.name === name);
}

/** `body-inspection { … }` of a WAF block, defaults applied. */
export function wafBody(settings: ConfigNode): WafBody {
  const b = child(settings, 'body-inspection');
  const arg = (name: string): unknown => child(b, name)?.args[0];
  return {
    inspect: arg('inspect-request-body') !== false,
    decompress: arg('decompress') !== false,
    maxBytes: parseSize(arg('max-body-inspection-bytes')) ?? D.waf.maxBodyInspectionBytes,
    maxRatio: typeof arg('max-decompression-ratio') === 'number' ? (arg('max-decompression-ratio') as number) : D.waf.maxDecompressionRatio,
  };
}

/** Routes an `exclude route="…"` with no `rule` and no `parameter` takes the WAF off. */
export function wafExcludedRoutes(settings: ConfigNode): Set<string> {
  const out = new Set<string>();
  for (const c of settings.children) {
    if (c.name !== 'exclude') continue;
    const route = c.props['route'];
    if (typeof route === 'string' && c.props['rule'] === undefined && c.props['parameter'] === undefined) out.add(route);
  }
  return out;
}

/** The top-level `waf {}` block as a filter, or undefined when it is absent or `enabled #false`. */
export function globalWafFilter(block: ConfigNode | undefined): FilterConfig | undefined {
  if (!block || child(block, 'enabled')?.args[0] === false) return undefined;
  const settings: ConfigNode = { ...block, children: block.children.filter((c) => c.name !== 'enabled') };
  // A WAF that fails open would let every request through uninspected.
  return { name: WAF_GLOBAL_FILTER, type: 'waf', failureMode: 'closed', failureModeFromRoute: false, plugin: undefined, settings, loc: block.loc };
}
