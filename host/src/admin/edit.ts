/**
 * Admin API changes as edits of the KDL text, so a change goes through the same loading,
 * validation and reload transaction as an edited file, and `persist #true` can write it back
 * with comments and formatting kept (@bgotink/kdl keeps every byte it did not touch).
 * KDL v1 files are written back in v2 syntax (the library's output), comments included.
 */
import { Document, Node, parse as parseV2, format } from '@bgotink/kdl';
import { parse as parseV1 } from '@bgotink/kdl/v1-compat';
import { WeirError } from '../errors.ts';

export interface TargetSpec {
  readonly address: string;
  readonly weight: number;
}

/** A parsed config file being edited. */
export class KdlFile {
  readonly path: string;
  readonly doc: Document;

  constructor(path: string, text: string) {
    this.path = path;
    try {
      this.doc = parseV2(text);
    } catch {
      try {
        this.doc = parseV1(text);
      } catch (err) {
        throw new WeirError('WEIR_ERR_ADMIN_CONFLICT', `${path} is not valid KDL: ${(err as Error).message}`);
      }
    }
  }

  text(): string {
    return format(this.doc);
  }

  /** The `upstream "name"` node, top-level or inside `upstreams`. */
  findBlock(kind: 'upstream' | 'route', name: string): { node: Node; parent: Document } | undefined {
    const plural = `${kind}s`;
    for (const n of this.doc.nodes) {
      if (n.getName() === kind && n.getArgument(0) === name) return { node: n, parent: this.doc };
      if (n.getName() === plural && n.children) {
        for (const c of n.children.nodes) if (c.getName() === kind && c.getArgument(0) === name) return { node: c, parent: n.children };
      }
    }
    return undefined;
  }

  /** Replaces the `target` children of an upstream with `targets` (in place of the first one, in the same style). */
  setTargets(upstream: string, targets: readonly TargetSpec[]): void {
    const found = this.findBlock('upstream', upstream);
    if (!found) throw new WeirError('WEIR_ERR_ADMIN_NOT_FOUND', `no upstream ${upstream} in ${this.path}`);
    const node = found.node;
    node.children ??= new Document();
    const kids = node.children;
    const old = kids.nodes.filter((c) => c.getName() === 'target');
    const style = old[0] ?? kids.nodes[0];
    const lead = style?.leading ?? '\n';
    const indent = indentOf(lead, style ? '' : '    ');
    const sep = style?.trailing === undefined || style.trailing.includes('\n') ? '\n' : ';';
    // A target that stays keeps its own trailing comment; the rest take the block's style.
    const same = new Map(old.map((o) => [String(o.getArgument(0)), o]));
    const made = targets.map((t, i) => {
      const n = leaf(`target ${JSON.stringify(t.address)} weight=${t.weight}`);
      n.leading = i === 0 ? lead : indent;
      const kept = same.get(t.address)?.trailing;
      n.trailing = kept !== undefined && (sep !== '\n' || kept.includes('\n')) ? kept : sep;
      return n;
    });
    const anchor = old[0] ?? kids.nodes[0];
    for (const n of made) {
      if (anchor) kids.insertNodeBefore(n, anchor);
      else kids.appendNode(n);
    }
    for (const o of old) kids.removeNode(o);
  }

  /** Adds `upstream "name" { target … }` to the file's `upstreams` block, else at the end of the file. */
  addUpstream(name: string, targets: readonly TargetSpec[]): void {
    const block = this.doc.nodes.find((n) => n.getName() === 'upstreams' && n.children);
    const siblings = block ? block.children!.nodes.filter((c) => c.getName() === 'upstream') : [];
    const last = siblings.at(-1);
    const indent = last ? indentOf(last.leading ?? '', '    ') : block ? '    ' : '';
    const inner = `${indent}    `;
    const body = targets.map((t) => `${inner}target ${JSON.stringify(t.address)} weight=${t.weight}\n`).join('');
    const n = leaf(`upstream ${JSON.stringify(name)} {\n${body}${indent}}`);
    n.leading = block ? indent : '\n';
    n.trailing = '\n';
    if (block && last) block.children!.insertNodeAfter(n, last);
    else if (block) block.children!.appendNode(n);
    else this.doc.appendNode(n);
  }

  removeUpstream(name: string): void {
    const found = this.findBlock('upstream', name);
    if (!found) throw new WeirError('WEIR_ERR_ADMIN_NOT_FOUND', `no upstream ${name} in ${this.path}`);
    found.parent.removeNode(found.node);
  }

  /** `enabled #false` on the route, or no `enabled` key (the default, enabled). */
  setRouteEnabled(route: string, enabled: boolean): void {
    const found = this.findBlock('route', route);
    if (!found) throw new WeirError('WEIR_ERR_ADMIN_NOT_FOUND', `no route ${route} in ${this.path}`);
    const node = found.node;
    node.children ??= new Document();
    const kids = node.children;
    const first = kids.nodes[0];
    const existing = kids.nodes.filter((c) => c.getName() === 'enabled');
    if (enabled) {
      for (const e of existing) kids.removeNode(e);
      return;
    }
    if (existing.length) {
      for (const e of existing.slice(1)) kids.removeNode(e);
      const e = existing[0]!;
      const n = leaf('enabled #false');
      n.leading = e.leading;
      n.trailing = e.trailing;
      kids.replaceNode(e, n);
      return;
    }
    const n = leaf('enabled #false');
    n.leading = first?.leading ?? '\n    ';
    n.trailing = first?.trailing === undefined || first.trailing.includes('\n') ? '\n' : ';';
    if (first) {
      first.leading = indentOf(first.leading ?? '', '    ');
      kids.insertNodeBefore(n, first);
    } else kids.appendNode(n);
  }
}

function leaf(text: string): Node {
  return parseV2(text).nodes[0]!;
}

/** The indentation at the end of a node's leading whitespace. */
function indentOf(leading: string, fallback: string): string {
  const line = leading.slice(leading.lastIndexOf('\n') + 1);
  return /^[ \t]*$/.test(line) ? line : fallback;
}
