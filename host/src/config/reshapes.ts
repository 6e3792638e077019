/**
 * Sentinel's block shapes of keys that Weir writes as one value (schema.ts `reshape`).
 * Each one rewrites a parsed KDL node in place and says what it became; children it does
 * not understand stay, so the schema check reports them at their own location.
 */
import { Entry, Node } from '@bgotink/kdl';

/** A rewrite of a node written in another dialect's shape; returns what it became, or undefined if the node was already in Weir's shape. */
export interface Reshape {
  readonly from: string;
  readonly doc: string;
  readonly apply: (node: Node) => string | undefined;
}

function child(node: Node, name: string): Node | undefined {
  return node.children?.nodes.filter((c) => c.getName() === name).at(-1);
}
function drop(node: Node, name: string): void {
  for (const c of node.children?.nodes.filter((x) => x.getName() === name) ?? []) node.children!.removeNode(c);
  if (node.children && node.children.nodes.length === 0) node.children = null;
}

/** `access-log { enabled #true; file "x"; format "json" }` → `access-log "x"` (or `#true` / `#false`). */
export const ACCESS_LOG_BLOCK: Reshape = {
  from: '{ enabled; file; format "json" }',
  doc: '`enabled #false` → `#false`; `file "…"` → that path; otherwise `#true` (stdout). `format "json"` is Weir\'s JSON lines; another format is refused.',
  apply(node) {
    if (!node.children || node.entries.length > 0) return undefined;
    const enabled = child(node, 'enabled')?.getArgument(0);
    const file = child(node, 'file')?.getArgument(0);
    const value = enabled === false ? false : typeof file === 'string' ? file : true;
    drop(node, 'enabled');
    drop(node, 'file');
    if (child(node, 'format')?.getArgument(0) === 'json') drop(node, 'format');
    node.entries = [Entry.createArgument(value), ...node.entries];
    return JSON.stringify(value);
  },
};

/** `insecure-skip-verify #true` in an upstream `tls` block → `verify #false`. */
export const INSECURE_SKIP_VERIFY: Reshape = {
  from: '{ insecure-skip-verify <bool> }',
  doc: '`insecure-skip-verify #true` → `verify #false` (and the reverse).',
  apply(node) {
    const c = child(node, 'insecure-skip-verify');
    const v = c?.getArgument(0);
    if (!c || typeof v !== 'boolean') return undefined;
    c.setName('verify');
    c.getArgumentEntry(0)!.setValue(!v);
    return `{ verify ${v ? '#false' : '#true'} }`;
  },
};

/** `set { X-A "1"; X-B "2" }` (and `add { … }`) in a header-changes block → `set "X-A" "1"` `set "X-B" "2"`. */
export const HEADER_OPS_BLOCKS: Reshape = {
  from: '{ set { NAME "value" }; add { NAME "value" } }',
  doc: 'each `NAME "value"` child of `set { }` / `add { }` → `set "NAME" "value"` / `add "NAME" "value"`, in the order written.',
  apply(node) {
    let changed = false;
    for (const op of [...(node.children?.nodes ?? [])]) {
      if ((op.getName() !== 'set' && op.getName() !== 'add') || op.entries.length > 0 || !op.children) continue;
      let after: Node = op;
      for (const c of op.children.nodes) {
        const flat = Node.create(op.getName());
        flat.entries = [Entry.createArgument(c.getName()), ...c.entries];
        node.children!.insertNodeAfter(flat, after);
        after = flat;
      }
      node.children!.removeNode(op);
      changed = true;
    }
    return changed ? '{ set "NAME" "value"; add "NAME" "value" }' : undefined;
  },
};
