/**
 * A parser for the subset of WIT that `wit/weir.wit` uses: one package, interfaces with
 * records, variants, enums, type aliases and functions, `use`, and one world with function
 * exports and interface imports. Anything else is rejected with its line number, so the
 * codec generator never silently mis-handles a construct it does not know.
 */

export type Prim =
  | 'bool' | 'u8' | 'u16' | 'u32' | 'u64' | 's8' | 's16' | 's32' | 's64' | 'f32' | 'f64' | 'string';

export type Ty =
  | { readonly k: 'prim'; readonly name: Prim }
  | { readonly k: 'list'; readonly el: Ty }
  | { readonly k: 'option'; readonly t: Ty }
  | { readonly k: 'result'; readonly ok: Ty | undefined; readonly err: Ty | undefined }
  | { readonly k: 'tuple'; readonly ts: readonly Ty[] }
  | { readonly k: 'ref'; readonly name: string };

export interface Field { readonly name: string; readonly ty: Ty; readonly doc: string }
export interface Case { readonly name: string; readonly ty: Ty | undefined; readonly doc: string }

export type TypeDef =
  | { readonly kind: 'record'; readonly name: string; readonly doc: string; readonly fields: readonly Field[] }
  | { readonly kind: 'variant'; readonly name: string; readonly doc: string; readonly cases: readonly Case[] }
  | { readonly kind: 'enum'; readonly name: string; readonly doc: string; readonly cases: readonly Case[] }
  | { readonly kind: 'alias'; readonly name: string; readonly doc: string; readonly ty: Ty };

export interface Func {
  readonly name: string;
  readonly doc: string;
  readonly params: readonly Field[];
  readonly result: Ty | undefined;
}

export interface Interface {
  readonly name: string;
  readonly doc: string;
  readonly types: TypeDef[];
  readonly funcs: Func[];
}

export interface World {
  readonly name: string;
  readonly doc: string;
  readonly imports: string[];
  readonly exports: Func[];
}

export interface Package {
  /** `weir:proxy` */
  readonly name: string;
  /** `0.1.0` */
  readonly version: string;
  readonly interfaces: Interface[];
  readonly worlds: World[];
  /** Every named type of the package; names are unique across interfaces in our WIT. */
  readonly types: Map<string, TypeDef>;
}

const PRIMS = new Set<string>(['bool', 'u8', 'u16', 'u32', 'u64', 's8', 's16', 's32', 's64', 'f32', 'f64', 'string']);

interface Tok { readonly t: string; readonly line: number; readonly doc: string }

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let line = 1;
  let doc: string[] = [];
  while (i < src.length) {
    const c = src[i]!;
    if (c === '\n') { line++; i++; continue; }
    if (c === ' ' || c === '\t' || c === '\r') { i++; continue; }
    if (src.startsWith('///', i)) {
      const end = src.indexOf('\n', i);
      const stop = end < 0 ? src.length : end;
      doc.push(src.slice(i + 3, stop).replace(/^ /, ''));
      i = stop;
      continue;
    }
    if (src.startsWith('//', i)) { const end = src.indexOf('\n', i); i = end < 0 ? src.length : end; continue; }
    if (src.startsWith('/*', i)) {
      const end = src.indexOf('*/', i + 2);
      if (end < 0) throw new Error(`wit:${line}: unterminated comment`);
      for (let j = i; j < end; j++) if (src[j] === '\n') line++;
      i = end + 2;
      continue;
    }
    if (src.startsWith('->', i)) { toks.push({ t: '->', line, doc: '' }); i += 2; continue; }
    if ('{}()<>,:;=.@/*_'.includes(c) && !(c === '_' && /[A-Za-z0-9]/.test(src[i + 1] ?? ''))) {
      // Docs attach to the token that starts an item (`record`, a field name, `@since`).
      toks.push({ t: c, line, doc: c === '@' ? doc.join('\n') : '' });
      if (c === '@') doc = [];
      i++;
      continue;
    }
    const m = /^%?[A-Za-z0-9][A-Za-z0-9-]*(\.[0-9]+)*(-[A-Za-z0-9.]+)?/.exec(src.slice(i, i + 200));
    if (!m) throw new Error(`wit:${line}: unexpected character ${JSON.stringify(c)}`);
    toks.push({ t: m[0], line, doc: doc.join('\n') });
    doc = [];
    i += m[0].length;
  }
  return toks;
}

/** Parses WIT source into a package; throws `wit:<line>: …` on anything outside the subset. */
export function parseWit(src: string): Package {
  const toks = tokenize(src);
  let pos = 0;
  const peek = (o = 0): string => toks[pos + o]?.t ?? '<eof>';
  const line = (): number => toks[Math.min(pos, toks.length - 1)]?.line ?? 0;
  const fail = (msg: string): never => { throw new Error(`wit:${line()}: ${msg}`); };
  const next = (): Tok => toks[pos++] ?? fail('unexpected end of input');
  const expect = (t: string): void => { const got = next(); if (got.t !== t) fail(`expected ${t}, found ${got.t}`); };
  const ident = (): string => {
    const got = next().t;
    if (!/^%?[a-z][a-z0-9-]*$/.test(got)) fail(`expected an identifier, found ${got}`);
    return got.replace(/^%/, '');
  };
  // Gates like @since(version = 0.1.0) carry no meaning for the ABI; their doc is kept.
  const gates = (): string => {
    let doc = '';
    while (peek() === '@') {
      doc = toks[pos]!.doc || doc;
      next(); ident(); expect('(');
      while (peek() !== ')') next();
      expect(')');
    }
    return doc;
  };
  const docOf = (gateDoc: string): string => gateDoc || toks[pos]?.doc || '';

  const ty = (): Ty => {
    const name = ident();
    if (PRIMS.has(name)) return { k: 'prim', name: name as Prim };
    if (name === 'list') { expect('<'); const el = ty(); expect('>'); return { k: 'list', el }; }
    if (name === 'option') { expect('<'); const t = ty(); expect('>'); return { k: 'option', t }; }
    if (name === 'tuple') {
      expect('<');
      const ts: Ty[] = [ty()];
      while (peek() === ',') { next(); if (peek() === '>') break; ts.push(ty()); }
      expect('>');
      return { k: 'tuple', ts };
    }
    if (name === 'result') {
      if (peek() !== '<') return { k: 'result', ok: undefined, err: undefined };
      expect('<');
      let ok: Ty | undefined;
      if (peek() === '_') next(); else ok = ty();
      let err: Ty | undefined;
      if (peek() === ',') { next(); err = ty(); }
      expect('>');
      return { k: 'result', ok, err };
    }
    if (['char', 'flags', 'own', 'borrow', 'stream', 'future', 'resource'].includes(name)) fail(`unsupported type ${name}`);
    return { k: 'ref', name };
  };

  const params = (): Field[] => {
    expect('(');
    const out: Field[] = [];
    while (peek() !== ')') {
      const name = ident(); expect(':');
      out.push({ name, ty: ty(), doc: '' });
      if (peek() === ',') next();
    }
    expect(')');
    return out;
  };

  const func = (name: string, doc: string): Func => {
    expect('func');
    const ps = params();
    let result: Ty | undefined;
    if (peek() === '->') { next(); result = ty(); }
    expect(';');
    return { name, doc, params: ps, result };
  };

  const body = <T>(item: (doc: string) => T): T[] => {
    expect('{');
    const out: T[] = [];
    while (peek() !== '}') {
      const g = gates();
      out.push(item(docOf(g)));
      if (peek() === ',') next();
    }
    expect('}');
    return out;
  };

  const types = new Map<string, TypeDef>();
  const define = (d: TypeDef): TypeDef => {
    if (types.has(d.name)) fail(`type ${d.name} defined twice`);
    types.set(d.name, d);
    return d;
  };

  let pkgName = '';
  let version = '';
  const interfaces: Interface[] = [];
  const worlds: World[] = [];
  const skipUse = (): void => { while (next().t !== ';'); };

  gates();
  if (peek() === 'package') {
    next();
    const full = next().t; // tokenizer keeps `weir` then `:` …; rebuild below
    let s = full;
    while (peek() !== ';') s += next().t;
    expect(';');
    const m = /^([a-z][a-z0-9-]*:[a-z][a-z0-9-]*)@(.+)$/.exec(s);
    if (!m) fail(`bad package name ${s}`);
    pkgName = m![1]!;
    version = m![2]!;
  }
  while (pos < toks.length) {
    const g = gates();
    const doc = docOf(g);
    const kw = next().t;
    if (kw === 'interface') {
      const iface: Interface = { name: ident(), doc, types: [], funcs: [] };
      expect('{');
      while (peek() !== '}') {
        const ig = gates();
        const idoc = docOf(ig);
        const k = peek();
        if (k === 'use') { skipUse(); continue; }
        if (k === 'type') {
          next(); const name = ident(); expect('='); const t = ty(); expect(';');
          iface.types.push(define({ kind: 'alias', name, doc: idoc, ty: t }));
        } else if (k === 'record') {
          next(); const name = ident();
          const fields = body((fdoc) => { const n = ident(); expect(':'); return { name: n, ty: ty(), doc: fdoc }; });
          iface.types.push(define({ kind: 'record', name, doc: idoc, fields }));
        } else if (k === 'variant' || k === 'enum') {
          next(); const name = ident();
          const cases = body((cdoc) => {
            const n = ident();
            let t: Ty | undefined;
            if (k === 'variant' && peek() === '(') { next(); t = ty(); expect(')'); }
            return { name: n, ty: t, doc: cdoc };
          });
          iface.types.push(define({ kind: k, name, doc: idoc, cases }));
        } else if (peek(1) === ':') {
          const name = ident(); expect(':');
          iface.funcs.push(func(name, idoc));
        } else {
          fail(`unsupported interface item ${k}`);
        }
      }
      expect('}');
      interfaces.push(iface);
    } else if (kw === 'world') {
      const world: World = { name: ident(), doc, imports: [], exports: [] };
      expect('{');
      while (peek() !== '}') {
        const wg = gates();
        const wdoc = docOf(wg);
        const k = next().t;
        if (k === 'use') { skipUse(); continue; }
        if (k === 'import') {
          const name = ident();
          if (peek() === ':') fail('function imports at world level are not supported; import an interface');
          expect(';');
          world.imports.push(name);
        } else if (k === 'export') {
          const name = ident();
          if (peek() !== ':') fail('interface exports are not supported; export functions');
          expect(':');
          world.exports.push(func(name, wdoc));
        } else {
          fail(`unsupported world item ${k}`);
        }
      }
      expect('}');
      worlds.push(world);
    } else {
      fail(`unsupported top-level item ${kw}`);
    }
  }
  // Every reference must resolve, so later stages can assume it.
  const check = (t: Ty): void => {
    if (t.k === 'ref') { if (!types.has(t.name)) throw new Error(`wit: unknown type ${t.name}`); }
    else if (t.k === 'list') check(t.el);
    else if (t.k === 'option') check(t.t);
    else if (t.k === 'result') { if (t.ok) check(t.ok); if (t.err) check(t.err); }
    else if (t.k === 'tuple') t.ts.forEach(check);
  };
  for (const d of types.values()) {
    if (d.kind === 'alias') check(d.ty);
    else if (d.kind === 'record') d.fields.forEach((f) => check(f.ty));
    else d.cases.forEach((c) => c.ty && check(c.ty));
  }
  for (const f of [...interfaces.flatMap((i) => i.funcs), ...worlds.flatMap((w) => w.exports)]) {
    f.params.forEach((p) => check(p.ty));
    if (f.result) check(f.result);
  }
  return { name: pkgName, version, interfaces, worlds, types };
}
