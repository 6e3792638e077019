/**
 * Builds a listener's edge rules (`path-normalization`, ...) from its config node. The
 * schema has already checked types and enums; this applies the defaults.
 */
import { DEFAULTS as D } from './defaults.ts';
import type { ConfigNode, EscapedSlashesAction, ListenerEdgeConfig } from './types.ts';

function child(node: ConfigNode | undefined, name: string): ConfigNode | undefined {
  return node?.children.findLast((c) => c.name === name);
}

function arg(node: ConfigNode | undefined, name: string): unknown {
  return child(node, name)?.args[0];
}

/** The edge part of a `listener` node (undefined: the default listener). */
export function buildListenerEdge(n: ConfigNode | undefined): ListenerEdgeConfig {
  const pn = child(n, 'path-normalization');
  const merge = arg(pn, 'merge-slashes');
  const esc = arg(pn, 'escaped-slashes');
  return {
    pathNormalization: {
      mergeSlashes: typeof merge === 'boolean' ? merge : D.pathNormalization.mergeSlashes,
      escapedSlashes: typeof esc === 'string' ? (esc as EscapedSlashesAction) : (D.pathNormalization.escapedSlashes as EscapedSlashesAction),
    },
  };
}
