/** Reads a route's `policies { compression {} }` (validated against the schema). */
import type { ConfigNode } from '../config/types.ts';
import { parseSize } from '../config/values.ts';
import { arg, child } from '../filters/settings.ts';
import { ENCODINGS, type Encoding, type Levels } from './negotiate.ts';

export interface CompressionSettings {
  /** In the server's order of preference (ties in the client's q-values go to the first). */
  readonly encodings: readonly Encoding[];
  /** `text/html`, or `text/*` for a whole top-level type. */
  readonly contentTypes: readonly string[];
  /** Responses with a Content-Length below this are sent as they are. */
  readonly minSize: number;
  readonly levels: Levels;
}

export const COMPRESSION_DEFAULTS = {
  encodings: ['br', 'zstd', 'gzip'] as readonly Encoding[],
  contentTypes: [
    'text/html', 'text/css', 'text/plain', 'text/xml', 'text/javascript', 'text/csv', 'text/markdown',
    'application/javascript', 'application/json', 'application/xml', 'application/wasm',
    'application/manifest+json', 'application/ld+json', 'application/graphql-response+json', 'image/svg+xml',
  ],
  minSize: 1024,
  levels: { gzip: 6, br: 4, zstd: 3 } satisfies Levels,
};

function list(node: ConfigNode, name: string): string[] {
  return node.children.filter((c) => c.name === name).flatMap((c) => c.args.map(String));
}

function level(node: ConfigNode, name: string, fallback: number): number {
  const v = arg(node, name);
  return typeof v === 'number' ? v : fallback;
}

/** A route's settings, or undefined when the route does not compress. */
export function compressionSettings(routeNode: ConfigNode | undefined): CompressionSettings | undefined {
  const p = routeNode ? child(routeNode, 'policies') : undefined;
  const node = p ? child(p, 'compression') : undefined;
  if (!node || arg(node, 'enabled') === false) return undefined;
  const enc = list(node, 'encodings').map((e) => e.toLowerCase()).filter((e): e is Encoding => (ENCODINGS as readonly string[]).includes(e));
  const types = list(node, 'content-types').map((t) => t.toLowerCase());
  const D = COMPRESSION_DEFAULTS;
  return {
    encodings: enc.length ? enc : D.encodings,
    contentTypes: types.length ? types : D.contentTypes,
    minSize: parseSize(arg(node, 'min-size')) ?? D.minSize,
    levels: { gzip: level(node, 'gzip-level', D.levels.gzip), br: level(node, 'br-level', D.levels.br), zstd: level(node, 'zstd-level', D.levels.zstd) },
  };
}
