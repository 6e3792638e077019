/**
 * KDL text → ConfigNode trees, with file:line:column on every node, argument and property.
 *
 * The seeds are KDL v1 (`client-auth true`) while new files may be v2 (`#true`), so we try
 * v2 then v1. We call both parsers ourselves: `parseCompat` loses `storeLocations` on its v1
 * fallback, and locations are the point of this module.
 */
import { parse as parseV2, format as formatKdl, getLocation, InvalidKdlError } from '@bgotink/kdl';
import type { Node as KdlNode, Entry as KdlEntry } from '@bgotink/kdl';
import { parse as parseV1, parseAndTransform as parseV1AsV2 } from '@bgotink/kdl/v1-compat';
import type { Document as KdlDocument } from '@bgotink/kdl';
import type { ConfigDiagnostic, ConfigNode, ConfigScalar, SourceLocation } from './types.ts';
import { rewriteDialect, type DialectUse } from './dialect.ts';

export type KdlParseResult =
  | { readonly ok: true; readonly nodes: readonly ConfigNode[]; readonly version: 1 | 2 }
  | { readonly ok: false; readonly diagnostics: readonly ConfigDiagnostic[] };

/**
 * Parses KDL text. With `dialect`, Sentinel's spellings are first rewritten into Weir's
 * (dialect.ts) and each rewrite is recorded there.
 */
export function parseKdl(text: string, file: string, dialect?: DialectUse[]): KdlParseResult {
  const r = parseKdlDocument(text, file);
  if (!r.ok) return r;
  if (dialect) rewriteDialect(r.doc, file, dialect);
  return { ok: true, version: r.version, nodes: r.doc.nodes.map((n) => toConfigNode(n, file)) };
}

/** KDL text → the library's document (comments and layout kept, locations stored). */
export function parseKdlDocument(text: string, file: string):
  | { readonly ok: true; readonly doc: KdlDocument; readonly version: 1 | 2 }
  | { readonly ok: false; readonly diagnostics: readonly ConfigDiagnostic[] } {
  let v2Error: unknown;
  try {
    return { ok: true, version: 2, doc: parseV2(text, { storeLocations: true }) };
  } catch (err) {
    if (!(err instanceof InvalidKdlError)) throw err;
    v2Error = err;
  }
  let v1Error: unknown;
  try {
    return { ok: true, version: 1, doc: parseV1(text, { storeLocations: true }) };
  } catch (err) {
    if (!(err instanceof InvalidKdlError)) throw err;
    v1Error = err;
  }
  return { ok: false, diagnostics: syntaxDiagnostics(v2Error as InvalidKdlError, v1Error as InvalidKdlError, text, file) };
}

/**
 * Both versions failed: report the errors of the parser that got further into the text.
 * A v1 file fails v2 at its first bare `true`, and a v2 file fails v1 at its first `#true`;
 * the parser that matches the author's intent reaches the real mistake later.
 */
function syntaxDiagnostics(v2: InvalidKdlError, v1: InvalidKdlError, text: string, file: string): ConfigDiagnostic[] {
  const first = (e: InvalidKdlError): number => {
    let min = Infinity;
    for (const d of e.flat()) min = Math.min(min, d.start?.offset ?? Infinity);
    return min;
  };
  const chosen = first(v1) > first(v2) ? v1 : v2;
  const version = chosen === v1 ? 1 : 2;
  const out: ConfigDiagnostic[] = [];
  for (const d of chosen.flat()) {
    const loc: SourceLocation | undefined = d.start
      ? { file, line: d.start.line, column: d.start.column }
      : undefined;
    // The library appends " at L:C"; we print the location ourselves.
    let message = d.message.replace(/ at \d+:\d+$/, '');
    // The library's advice ("quote an identifier") misleads for the common `["a", "b"]` mistake.
    if (d.start && text[d.start.offset] === '[') message = 'unexpected `[`: KDL has no list syntax';
    out.push({
      code: 'WEIR_ERR_CONFIG_SYNTAX',
      message: `invalid KDL (read as KDL v${version}): ${message}`,
      loc,
      hint: syntaxHint(text, d),
    });
  }
  return out;
}

function syntaxHint(text: string, err: InvalidKdlError): string | undefined {
  const at = err.start?.offset;
  if (at === undefined) return undefined;
  const ch = text[at];
  if (ch === '[') {
    return 'write the values as separate arguments, e.g. `filters "a" "b"`';
  }
  return undefined;
}

function loc(el: Parameters<typeof getLocation>[0], file: string, fallback?: SourceLocation): SourceLocation {
  const l = getLocation(el);
  if (!l) return fallback ?? { file, line: 0, column: 0 };
  return { file, line: l.start.line, column: l.start.column };
}

function scalar(entry: KdlEntry): ConfigScalar {
  const v: unknown = entry.getValue();
  if (typeof v === 'bigint') return Number(v);
  return v as ConfigScalar;
}

/** `parentLoc` places nodes the dialect rewrite created (they have no text of their own). */
function toConfigNode(node: KdlNode, file: string, parentLoc?: SourceLocation): ConfigNode {
  const nodeLoc = loc(node, file, parentLoc);
  const args: ConfigScalar[] = [];
  const argLocs: SourceLocation[] = [];
  const props: Record<string, ConfigScalar> = {};
  const propLocs: Record<string, SourceLocation> = {};
  for (const entry of node.entries) {
    const name = entry.getName();
    const where = loc(entry.value, file, loc(entry, file, nodeLoc));
    if (name === null) {
      args.push(scalar(entry));
      argLocs.push(where);
    } else {
      // KDL: the rightmost property of a given name wins.
      props[name] = scalar(entry);
      propLocs[name] = where;
    }
  }
  const children = node.children ? node.children.nodes.map((c) => toConfigNode(c, file, nodeLoc)) : [];
  return { name: node.getName(), args, props, children, loc: nodeLoc, argLocs, propLocs };
}

/**
 * `weir migrate`: the text rewritten in Weir's own spelling. The library's document keeps
 * comments and layout, so only the rewritten keys and values change.
 */
export function migrateText(text: string, file: string):
  | { readonly ok: true; readonly text: string; readonly uses: readonly DialectUse[] }
  | { readonly ok: false; readonly diagnostics: readonly ConfigDiagnostic[] } {
  const r = parseKdlDocument(text, file);
  if (!r.ok) return r;
  // A v1 file is printed as v2 (what Weir's docs write): values the rewrite sets are v2 tokens.
  const doc = r.version === 1 ? parseV1AsV2(text) : r.doc;
  const uses: DialectUse[] = [];
  rewriteDialect(doc, file, uses);
  return { ok: true, text: formatKdl(doc), uses };
}
