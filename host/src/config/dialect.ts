/**
 * Sentinel's spellings → Weir's, driven by the schema table (the `aliases`, `valueAliases`,
 * `moved`, `hoistChildren` and `reshape` fields of schema.ts). The rewrite works on the
 * parsed KDL document, which keeps comments and layout, so the same pass feeds the loader,
 * `weir validate --explain` (the records) and `weir migrate` (the document printed back).
 */
import { Document, Node, getLocation } from '@bgotink/kdl';
import { ROOT, type KeySpec, type ValueSpec } from './schema.ts';
import type { SourceLocation } from './types.ts';

/** One spelling rewritten: where, as written, and the Weir key it became. */
export interface DialectUse {
  readonly loc: SourceLocation;
  readonly written: string;
  readonly weir: string;
}

/** The top level as a block: its children are ROOT. */
const TOP: KeySpec = { name: '', doc: '', children: ROOT };

/** Rewrites `doc` in place into Weir's spelling; every rewrite is pushed to `uses`. */
export function rewriteDialect(doc: Document, file: string, uses: DialectUse[]): void {
  rewriteBlock(doc, TOP, '', file, uses);
}

function where(el: Node, file: string, fallback: SourceLocation | undefined): SourceLocation {
  const l = getLocation(el);
  return l ? { file, line: l.start.line, column: l.start.column } : fallback ?? { file, line: 0, column: 0 };
}

/** The child specs of a node of `spec`: its children plus, for `variants`, the case picked by the node. */
export function childSpecsOf(spec: KeySpec, kind: unknown): readonly KeySpec[] {
  const base = spec.children ?? [];
  if (!spec.variants) return base;
  const cases = spec.variants.cases;
  return typeof kind === 'string' && Object.hasOwn(cases, kind) ? [...base, ...cases[kind]!] : base;
}

function rewriteBlock(block: Document, spec: KeySpec, path: string, file: string, uses: DialectUse[], parentLoc?: SourceLocation): void {
  // Children that belong deeper in this block move first, so the walk below reaches them there.
  for (const [name, target] of Object.entries(spec.moved ?? {})) {
    for (const node of block.nodes.filter((n) => n.getName() === name)) {
      const at = where(node, file, parentLoc);
      block.removeNode(node);
      const steps = target.split('.');
      let into = block;
      for (const step of steps.slice(0, -1)) {
        let next = into.nodes.filter((n) => n.getName() === step).at(-1);
        if (!next) {
          next = Node.create(step);
          into.appendNode(next);
        }
        next.children ??= new Document();
        into = next.children;
      }
      node.setName(steps.at(-1)!);
      into.appendNode(node);
      uses.push({ loc: at, written: path + name, weir: path + steps.join(' › ') });
    }
  }
  const specs = childSpecsOf(spec, kindOf(block, spec));
  const byName = new Map<string, KeySpec>();
  for (const s of specs) byName.set(s.name, s);
  const aliases = new Map<string, KeySpec>();
  for (const s of specs) for (const a of s.aliases ?? []) aliases.set(a, s);

  for (const node of [...block.nodes]) {
    const written = node.getName();
    let s = byName.get(written);
    const at = where(node, file, parentLoc);
    if (!s && aliases.has(written)) {
      s = aliases.get(written)!;
      node.setName(s.name);
      uses.push({ loc: at, written: path + written, weir: path + s.name });
    }
    if (!s) continue;
    if (s.reshape) {
      const became = s.reshape.apply(node);
      if (became !== undefined) uses.push({ loc: at, written: `${path}${s.name} ${s.reshape.from}`, weir: `${path}${s.name} ${became}` });
    }
    if (s.hoistChildren && node.children) {
      let after: Node = node;
      for (const c of [...node.children.nodes]) {
        node.children.removeNode(c);
        block.insertNodeAfter(c, after);
        after = c;
        uses.push({ loc: where(c, file, at), written: `${path}${s.name} { ${c.getName()} }`, weir: path + c.getName() });
      }
      node.children = null;
    }
    rewriteValues(node, s, path, at, file, uses);
  }
  // Hoisted nodes are now in this block: a second look renames their aliases too.
  for (const node of [...block.nodes]) {
    const s = byName.get(node.getName()) ?? aliases.get(node.getName());
    if (s && node.getName() !== s.name) {
      uses.push({ loc: where(node, file, parentLoc), written: path + node.getName(), weir: path + s.name });
      node.setName(s.name);
    }
    if (s && node.children && !s.anyChildren && !s.hoistChildren) rewriteBlock(node.children, s, `${path}${s.name} › `, file, uses, where(node, file, parentLoc));
  }
}

function kindOf(block: Document, spec: KeySpec): unknown {
  if (!spec.variants) return undefined;
  return block.nodes.filter((n) => n.getName() === spec.variants!.key).at(-1)?.getArgument(0);
}

function rewriteValues(node: Node, s: KeySpec, path: string, at: SourceLocation, file: string, uses: DialectUse[]): void {
  const args = node.getArgumentEntries();
  args.forEach((entry, i) => {
    const vs: ValueSpec | undefined = s.args?.[i] ?? (i >= (s.args?.length ?? 0) ? s.rest : undefined);
    const map = vs?.valueAliases;
    if (!map) return;
    const v = entry.getValue();
    const key = String(v);
    if (!Object.hasOwn(map, key) || map[key] === v) return;
    const loc = where(node, file, at);
    entry.setValue(map[key]!);
    uses.push({ loc, written: `${path}${s.name} ${JSON.stringify(v)}`, weir: `${path}${s.name} ${JSON.stringify(map[key])}` });
  });
}
