/**
 * Builds a listener's edge rules (`path-normalization`, `trusted-proxies`, `proxy-protocol`,
 * `request-id`) from its config node. The schema has already checked types and enums; this
 * applies the defaults and checks CIDRs and the keys that need each other.
 */
import { DEFAULTS as D } from './defaults.ts';
import { parseCidr } from './values.ts';
import type { ConfigDiagnostic, ConfigNode, EscapedSlashesAction, ListenerEdgeConfig } from './types.ts';

function child(node: ConfigNode | undefined, name: string): ConfigNode | undefined {
  return node?.children.findLast((c) => c.name === name);
}

function arg(node: ConfigNode | undefined, name: string): unknown {
  return child(node, name)?.args[0];
}

/** The edge part of a `listener` node (undefined: the default listener). */
export function buildListenerEdge(n: ConfigNode | undefined, diags: ConfigDiagnostic[] = []): ListenerEdgeConfig {
  const pn = child(n, 'path-normalization');
  const merge = arg(pn, 'merge-slashes');
  const esc = arg(pn, 'escaped-slashes');
  const trustedProxies: string[] = [];
  for (const t of n?.children.filter((c) => c.name === 'trusted-proxies') ?? []) {
    t.args.forEach((a, i) => {
      if (typeof a === 'string' && parseCidr(a) !== undefined) trustedProxies.push(a);
      else diags.push({ code: 'WEIR_ERR_CONFIG_VALUE', message: `\`trusted-proxies\`: ${JSON.stringify(a)} is not an IP address or CIDR`, loc: t.argLocs?.[i] ?? t.loc, hint: 'e.g. "10.0.0.0/8", "::1/128"' });
    });
  }
  const ppNode = child(n, 'proxy-protocol');
  const pp = ppNode?.args[0];
  const proxyProtocol = typeof pp === 'string' ? (pp as ListenerEdgeConfig['proxyProtocol']) : (D.edge.proxyProtocol as ListenerEdgeConfig['proxyProtocol']);
  if (proxyProtocol !== 'off' && trustedProxies.length === 0) {
    diags.push({ code: 'WEIR_ERR_CONFIG_CONSTRAINT', message: '`proxy-protocol` is read only from `trusted-proxies`, and this listener has none', loc: ppNode!.loc, hint: 'add `trusted-proxies "<load balancer CIDR>"`' });
  }
  const trust = arg(child(n, 'request-id'), 'trust-incoming');
  return {
    pathNormalization: {
      mergeSlashes: typeof merge === 'boolean' ? merge : D.pathNormalization.mergeSlashes,
      escapedSlashes: typeof esc === 'string' ? (esc as EscapedSlashesAction) : (D.pathNormalization.escapedSlashes as EscapedSlashesAction),
    },
    trustedProxies,
    proxyProtocol,
    trustIncomingRequestId: typeof trust === 'boolean' ? trust : D.edge.trustIncomingRequestId,
    ...(typeof arg(n, 'default-route') === 'string' ? { defaultRoute: arg(n, 'default-route') as string } : {}),
  };
}
