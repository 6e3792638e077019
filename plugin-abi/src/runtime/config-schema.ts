/**
 * Enforces the JSON Schema a plugin declares in `plugin-info.config-schema` on its KDL config
 * block, at load (so `weir run`, a reload and `weir validate` all refuse a block that does not
 * match, before `configure` runs), with the file:line:column of the offending node.
 *
 * The KDL block becomes one JSON object (docs/plugin-abi.md, "Typed config"):
 *   - each node is a key of its parent's object (the block is the top object);
 *   - a node with neither properties nor children is its arguments: none → `true`, one → that
 *     value, several → an array;
 *   - a node with properties or children is an object of them, its arguments (if any) under
 *     the key `args` as an array;
 *   - a name given more than once becomes an array of those nodes' values, in order.
 * Validation is ajv's (draft-07, every error collected, the first one reported).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { ConfigNode, ConfigScalar, SourceLocation } from '../../../host/src/config/types.ts';
import { WeirError } from '../../../host/src/errors.ts';

type Json = ConfigScalar | Json[] | { [k: string]: Json };

/** Where each JSON pointer of the mapped block came from. */
interface Origin {
  readonly node: number;
  readonly loc: SourceLocation | undefined;
}

/** The JSON value of a config block, and the node (flat index, as in the WIT list) behind each pointer. */
export function configToJson(nodes: readonly ConfigNode[]): { json: Json; origins: Map<string, Origin>; nodeOrigins: Map<string, Origin> } {
  const origins = new Map<string, Origin>();
  /** Pointer of a node → the node itself (where an unknown name is reported). */
  const nodeOrigins = new Map<string, Origin>();
  let index = 0;
  const esc = (k: string): string => k.replace(/~/g, '~0').replace(/\//g, '~1');
  const block = (list: readonly ConfigNode[], ptr: string): { [k: string]: Json } => {
    const byName = new Map<string, ConfigNode[]>();
    for (const n of list) byName.set(n.name, [...(byName.get(n.name) ?? []), n]);
    const obj: { [k: string]: Json } = {};
    // Flat indexes follow document order (a depth-first walk), like flattenConfig.
    const values = new Map<ConfigNode, Json>();
    for (const n of list) {
      const same = byName.get(n.name)!;
      const at = `${ptr}/${esc(n.name)}${same.length > 1 ? `/${same.indexOf(n)}` : ''}`;
      values.set(n, node(n, at));
    }
    for (const [name, same] of byName) obj[name] = same.length > 1 ? same.map((n) => values.get(n)!) : values.get(same[0]!)!;
    return obj;
  };
  const node = (n: ConfigNode, ptr: string): Json => {
    const idx = index++;
    origins.set(ptr, { node: idx, loc: n.loc });
    nodeOrigins.set(ptr, { node: idx, loc: n.loc });
    const props = Object.entries(n.props);
    n.args.forEach((_, i) => origins.set(n.children.length || props.length ? `${ptr}/args/${i}` : n.args.length > 1 ? `${ptr}/${i}` : ptr, { node: idx, loc: n.argLocs?.[i] ?? n.loc }));
    if (!props.length && !n.children.length) return n.args.length === 0 ? true : n.args.length === 1 ? n.args[0]! : [...n.args];
    const obj = block(n.children, ptr);
    for (const [k, v] of props) {
      obj[k] = v;
      origins.set(`${ptr}/${esc(k)}`, { node: idx, loc: n.propLocs?.[k] ?? n.loc });
    }
    if (n.args.length) obj.args = [...n.args];
    return obj;
  };
  return { json: block(nodes, ''), origins, nodeOrigins };
}

const ajv = new Ajv({ allErrors: true, strict: false });
const compiled = new Map<string, ValidateFunction>();

/** The compiled validator of a schema text; a schema that does not compile fails the load. */
function validator(plugin: string, schema: string): ValidateFunction {
  let v = compiled.get(schema);
  if (v) return v;
  let parsed: unknown;
  try {
    parsed = JSON.parse(schema);
    v = ajv.compile(parsed as object);
  } catch (err) {
    throw new WeirError('WEIR_ERR_PLUGIN_LOAD', `plugin ${plugin}: its config-schema is not a valid JSON Schema: ${(err as Error).message}`, { cause: err });
  }
  compiled.set(schema, v);
  return v;
}

/** The block's nodes in the order of the WIT's flat list (what config-error.node indexes). */
export function flatConfigNodes(nodes: readonly ConfigNode[]): ConfigNode[] {
  const out: ConfigNode[] = [];
  const walk = (n: ConfigNode): void => {
    out.push(n);
    n.children.forEach(walk);
  };
  nodes.forEach(walk);
  return out;
}

export const where = (l: SourceLocation | undefined): string => (l ? `${l.file}:${l.line}:${l.column}: ` : '');

/** One ajv error as a sentence about the KDL block. */
function describe(e: ErrorObject, at: string): string {
  const p = e.params as Record<string, unknown>;
  if (e.keyword === 'additionalProperties') return `unknown node or property \`${String(p.additionalProperty)}\`${at ? ` in \`${at}\`` : ''}`;
  if (e.keyword === 'required') return `missing \`${String(p.missingProperty)}\`${at ? ` in \`${at}\`` : ''}`;
  return `\`${at || '(block)'}\` ${e.message ?? 'is invalid'}`;
}

/**
 * Checks a plugin's config block against its declared schema (empty: nothing to check).
 * Throws WEIR_ERR_PLUGIN_CONFIG naming the node (flat index in `detail.node`, and `detail.loc`).
 */
export function checkConfigSchema(plugin: string, schema: string, nodes: readonly ConfigNode[], blockLoc?: SourceLocation): void {
  if (schema.trim() === '') return;
  const validate = validator(plugin, schema);
  const { json, origins, nodeOrigins } = configToJson(nodes);
  if (validate(json)) return;
  const e = validate.errors![0]!;
  // additionalProperties / required name a key under the pointer: blame that key if it exists.
  const key = (e.params as { additionalProperty?: string }).additionalProperty;
  let ptr = key !== undefined ? `${e.instancePath}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}` : e.instancePath;
  while (ptr && !origins.has(ptr)) ptr = ptr.slice(0, ptr.lastIndexOf('/'));
  const origin = (key !== undefined ? nodeOrigins.get(ptr) : undefined) ?? origins.get(ptr);
  const at = e.instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');
  const loc = origin?.loc ?? blockLoc;
  const more = validate.errors!.length > 1 ? ` (and ${validate.errors!.length - 1} more)` : '';
  throw new WeirError('WEIR_ERR_PLUGIN_CONFIG', `${where(loc)}plugin ${plugin}: config does not match its config-schema: ${describe(e, at)}${more}`, {
    detail: { plugin, node: origin?.node, loc },
  });
}
