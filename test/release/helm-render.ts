/**
 * A small renderer for the subset of Helm's Go templates the Weir chart uses (helm itself
 * is not installable offline here). It throws on any construct or function outside the
 * subset, so a template that drifts from it fails the test instead of rendering wrongly.
 *
 * Supported: {{ }} with trim markers, comments, define/include, if/else if/else, with/else,
 * pipelines, fields (.Values.a.b, .Chart.X, .Release.X, `.`, `$`), string/number literals,
 * and the functions in FUNCS.
 */
import { createHash } from 'node:crypto';
import { stringify } from 'yaml';

type Node =
  | { t: 'text'; v: string }
  | { t: 'out'; p: string }
  | { t: 'if'; branches: Array<{ cond: string | undefined; body: Node[] }> }
  | { t: 'with'; p: string; body: Node[]; els: Node[] };

type Scope = { dot: unknown; root: unknown };

/** Splits into text and actions, applying `{{-` / `-}}` trimming. */
function lex(src: string): Array<{ text: string } | { act: string }> {
  const out: Array<{ text: string } | { act: string }> = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      out.push({ text: src.slice(i) });
      break;
    }
    out.push({ text: src.slice(i, open) });
    const close = src.indexOf('}}', open);
    if (close < 0) throw new Error('unclosed {{');
    let act = src.slice(open + 2, close);
    if (act.startsWith('-')) {
      const prev = out[out.length - 1] as { text: string };
      prev.text = prev.text.replace(/\s+$/, '');
      act = act.slice(1);
    }
    i = close + 2;
    if (act.endsWith('-')) {
      act = act.slice(0, -1);
      while (i < src.length && /\s/.test(src[i]!)) i++;
    }
    act = act.trim();
    if (!act.startsWith('/*')) out.push({ act });
  }
  return out;
}

/** Parses tokens into a tree; `define` blocks go to `defs`. */
function parse(src: string, defs: Map<string, Node[]>): Node[] {
  const toks = lex(src);
  let k = 0;
  const block = (ends: string[]): { body: Node[]; end: string } => {
    const body: Node[] = [];
    while (k < toks.length) {
      const tok = toks[k++]!;
      if ('text' in tok) {
        if (tok.text) body.push({ t: 'text', v: tok.text });
        continue;
      }
      const a = tok.act;
      const word = a.split(/\s+/)[0]!;
      if (ends.includes(word) || (word === 'else' && ends.includes('else'))) return { body, end: a };
      if (word === 'if') {
        const branches: Array<{ cond: string | undefined; body: Node[] }> = [];
        let cond: string | undefined = a.slice(2).trim();
        for (;;) {
          const r = block(['end', 'else']);
          branches.push({ cond, body: r.body });
          if (r.end === 'end') break;
          const rest = r.end.slice(4).trim();
          cond = rest.startsWith('if ') ? rest.slice(3).trim() : undefined;
          if (rest && !rest.startsWith('if ')) throw new Error(`unsupported: {{ ${r.end} }}`);
        }
        body.push({ t: 'if', branches });
      } else if (word === 'with') {
        const r = block(['end', 'else']);
        const els = r.end === 'end' ? [] : block(['end']).body;
        body.push({ t: 'with', p: a.slice(4).trim(), body: r.body, els });
      } else if (word === 'define') {
        const name = JSON.parse(a.slice(6).trim()) as string;
        defs.set(name, block(['end']).body);
      } else if (['range', 'template', 'block', 'tpl'].includes(word) || a.startsWith('$') && a.includes(':=')) {
        throw new Error(`unsupported construct: {{ ${a} }}`);
      } else {
        body.push({ t: 'out', p: a });
      }
    }
    if (ends.length) throw new Error(`missing {{ end }}`);
    return { body, end: '' };
  };
  return block([]).body;
}

const truthy = (v: unknown): boolean =>
  !(v === undefined || v === null || v === false || v === 0 || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0));
const str = (v: unknown): string => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
const indent = (n: number, s: unknown): string => str(s).split('\n').map((l) => ' '.repeat(n) + l).join('\n');

export class ChartRenderer {
  private readonly defs = new Map<string, Node[]>();
  /** Every `.Values…` path a template read (for the "is it in values.yaml" check). */
  readonly valuePaths = new Set<string>();

  constructor(helpers: string) {
    parse(helpers, this.defs);
  }

  private readonly funcs: Record<string, (...a: unknown[]) => unknown> = {
    default: (d, v) => (truthy(v) ? v : d),
    trunc: (n, s) => str(s).slice(0, Number(n)),
    trimSuffix: (suf, s) => (str(s).endsWith(str(suf)) ? str(s).slice(0, -str(suf).length) : str(s)),
    contains: (sub, s) => str(s).includes(str(sub)),
    replace: (a, b, s) => str(s).split(str(a)).join(str(b)),
    printf: (fmt, ...args) => {
      let i = 0;
      return str(fmt).replace(/%[sdv]/g, () => str(args[i++]));
    },
    quote: (s) => JSON.stringify(str(s)),
    nindent: (n, s) => `\n${indent(Number(n), s)}`,
    indent: (n, s) => indent(Number(n), s),
    toYaml: (v) => stringify(v).replace(/\n$/, ''),
    sha256sum: (s) => createHash('sha256').update(str(s)).digest('hex'),
    b64enc: (s) => Buffer.from(str(s)).toString('base64'),
    required: (msg, v) => {
      if (!truthy(v)) throw new Error(`required: ${str(msg)}`);
      return v;
    },
    and: (...a) => a.every(truthy),
    or: (...a) => a.some(truthy),
    not: (v) => !truthy(v),
    eq: (a, b) => a === b,
  };

  /** Splits on a separator outside quotes and parentheses. */
  private split(s: string, sep: RegExp): string[] {
    const parts: string[] = [];
    let depth = 0;
    let q = false;
    let cur = '';
    for (let i = 0; i < s.length; i++) {
      const c = s[i]!;
      if (c === '"' && s[i - 1] !== '\\') q = !q;
      if (!q && c === '(') depth++;
      if (!q && c === ')') depth--;
      if (!q && depth === 0 && sep.test(c)) {
        if (cur) parts.push(cur);
        cur = '';
        continue;
      }
      cur += c;
    }
    if (cur) parts.push(cur);
    return parts.map((p) => p.trim()).filter(Boolean);
  }

  private arg(tok: string, sc: Scope): unknown {
    if (tok.startsWith('(')) return this.pipeline(tok.slice(1, -1), sc);
    if (tok.startsWith('"')) return JSON.parse(tok) as string;
    if (/^-?\d+(\.\d+)?$/.test(tok)) return Number(tok);
    if (tok === 'true' || tok === 'false') return tok === 'true';
    if (tok === '.') return sc.dot;
    if (tok.startsWith('.') || tok.startsWith('$')) {
      const base = tok.startsWith('$') ? sc.root : sc.dot;
      const path = tok.replace(/^\$/, '').split('.').filter(Boolean);
      if (path[0] === 'Values' && base === sc.root) this.valuePaths.add(path.slice(1).join('.'));
      return path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], base);
    }
    throw new Error(`unsupported token ${tok}`);
  }

  private command(cmd: string, sc: Scope, piped: unknown[]): unknown {
    const toks = this.split(cmd, /\s/);
    const head = toks[0]!;
    if (/^[a-zA-Z]\w*$/.test(head) && !['true', 'false'].includes(head)) {
      const args = toks.slice(1).map((t) => this.arg(t, sc));
      if (head === 'include') return this.include(args[0] as string, args[1], sc.root);
      const f = this.funcs[head];
      if (!f) throw new Error(`unsupported function ${head}`);
      return f(...args, ...piped);
    }
    if (toks.length > 1 || piped.length) throw new Error(`cannot apply arguments to ${head}`);
    return this.arg(head, sc);
  }

  private pipeline(p: string, sc: Scope): unknown {
    let piped: unknown[] = [];
    for (const cmd of this.split(p, /\|/)) piped = [this.command(cmd, sc, piped)];
    return piped[0];
  }

  private include(name: string, dot: unknown, root: unknown): string {
    const body = this.defs.get(name);
    if (!body) throw new Error(`no template ${name}`);
    return this.exec(body, { dot, root });
  }

  private exec(nodes: Node[], sc: Scope): string {
    let out = '';
    for (const n of nodes) {
      if (n.t === 'text') out += n.v;
      else if (n.t === 'out') out += str(this.pipeline(n.p, sc));
      else if (n.t === 'if') {
        const b = n.branches.find((x) => x.cond === undefined || truthy(this.pipeline(x.cond, sc)));
        if (b) out += this.exec(b.body, sc);
      } else {
        const v = this.pipeline(n.p, sc);
        out += truthy(v) ? this.exec(n.body, { dot: v, root: sc.root }) : this.exec(n.els, sc);
      }
    }
    return out;
  }

  render(template: string, root: { Values: unknown; Chart: unknown; Release: unknown }): string {
    return this.exec(parse(template, this.defs), { dot: root, root });
  }
}
