/**
 * Emits the TypeScript codec for one world: TS types for every WIT type, a `call*` function
 * per export that lowers arguments straight into guest memory and lifts the result, and the
 * `hostImports` object the core module imports. Each WIT type gets one `load_*`/`store_*`
 * pair so the output stays readable; V8 inlines the small ones.
 */
import {
  casesOf, discSize, fieldOffsets, fieldTypes, funcAbi, layout, payloadOffset, resolve,
  type CoreTy,
} from './layout.ts';
import type { Func, Package, Ty, TypeDef, World } from './wit.ts';

export interface EmitOptions {
  /** Import functions the host implements asynchronously (JSPI). */
  readonly asyncImports: readonly string[];
}

const camel = (s: string): string => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const pascal = (s: string): string => camel(s).replace(/^./, (c) => c.toUpperCase());
const snake = (s: string): string => s.replace(/-/g, '_');

function docComment(doc: string, indent = ''): string {
  if (!doc) return '';
  const lines = doc.split('\n');
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`.trimEnd()).join('\n')}\n${indent} */\n`;
}

/** Stable identifier for a type, used to name its load/store helpers. */
function mangle(pkg: Package, t: Ty): string {
  switch (t.k) {
    case 'prim': return t.name;
    case 'ref': return snake(t.name);
    case 'list': return `list_${mangle(pkg, t.el)}`;
    case 'option': return `option_${mangle(pkg, t.t)}`;
    case 'result': return `result_${t.ok ? mangle(pkg, t.ok) : 'unit'}_${t.err ? mangle(pkg, t.err) : 'unit'}`;
    case 'tuple': return `tuple_${t.ts.map((x) => mangle(pkg, x)).join('_')}`;
  }
}

export function tsType(pkg: Package, t: Ty): string {
  switch (t.k) {
    case 'prim':
      if (t.name === 'string') return 'string';
      if (t.name === 'bool') return 'boolean';
      if (t.name === 'u64' || t.name === 's64') return 'bigint';
      return 'number';
    case 'ref': return pascal(t.name);
    case 'list': {
      const el = resolve(pkg, t.el);
      if (el.k === 'prim' && el.name === 'u8') return 'Uint8Array';
      const inner = tsType(pkg, t.el);
      return /[ |]/.test(inner) ? `(${inner})[]` : `${inner}[]`;
    }
    case 'option': return `${tsType(pkg, t.t)} | undefined`;
    case 'result': return `Result<${t.ok ? tsType(pkg, t.ok) : 'void'}, ${t.err ? tsType(pkg, t.err) : 'void'}>`;
    case 'tuple': return `[${t.ts.map((x) => tsType(pkg, x)).join(', ')}]`;
  }
}

const LOAD: Record<string, (p: string) => string> = {
  bool: (p) => `m.dv.getUint8(${p}) !== 0`,
  u8: (p) => `m.dv.getUint8(${p})`,
  s8: (p) => `m.dv.getInt8(${p})`,
  u16: (p) => `m.dv.getUint16(${p}, true)`,
  s16: (p) => `m.dv.getInt16(${p}, true)`,
  u32: (p) => `m.dv.getUint32(${p}, true)`,
  s32: (p) => `m.dv.getInt32(${p}, true)`,
  u64: (p) => `m.dv.getBigUint64(${p}, true)`,
  s64: (p) => `m.dv.getBigInt64(${p}, true)`,
  f32: (p) => `m.dv.getFloat32(${p}, true)`,
  f64: (p) => `m.dv.getFloat64(${p}, true)`,
  string: (p) => `m.readString(m.dv.getUint32(${p}, true), m.dv.getUint32(${p} + 4, true))`,
};

const STORE: Record<string, (v: string, p: string) => string> = {
  bool: (v, p) => `m.dv.setUint8(${p}, ${v} ? 1 : 0);`,
  u8: (v, p) => `m.dv.setUint8(${p}, ${v});`,
  s8: (v, p) => `m.dv.setInt8(${p}, ${v});`,
  u16: (v, p) => `m.dv.setUint16(${p}, ${v}, true);`,
  s16: (v, p) => `m.dv.setInt16(${p}, ${v}, true);`,
  u32: (v, p) => `m.dv.setUint32(${p}, ${v}, true);`,
  s32: (v, p) => `m.dv.setInt32(${p}, ${v}, true);`,
  u64: (v, p) => `m.dv.setBigUint64(${p}, ${v}, true);`,
  s64: (v, p) => `m.dv.setBigInt64(${p}, ${v}, true);`,
  f32: (v, p) => `m.dv.setFloat32(${p}, ${v}, true);`,
  f64: (v, p) => `m.dv.setFloat64(${p}, ${v}, true);`,
  string: (v, p) => `{ const sp = m.writeString(${v}); m.dv.setUint32(${p}, sp, true); m.dv.setUint32(${p} + 4, m.len, true); }`,
};

/** Lifts a primitive from one flat core value. */
const LIFT_FLAT: Record<string, (x: string) => string> = {
  bool: (x) => `${x} !== 0`,
  u8: (x) => `${x} & 0xff`,
  s8: (x) => `(${x} << 24) >> 24`,
  u16: (x) => `${x} & 0xffff`,
  s16: (x) => `(${x} << 16) >> 16`,
  u32: (x) => `${x} >>> 0`,
  s32: (x) => `${x} | 0`,
  u64: (x) => `BigInt.asUintN(64, ${x})`,
  s64: (x) => `${x}`,
  f32: (x) => `${x}`,
  f64: (x) => `${x}`,
};

/** Lowers a primitive to one flat core value. */
const LOWER_FLAT: Record<string, (v: string) => string> = {
  bool: (v) => `${v} ? 1 : 0`,
  u8: (v) => `${v}`, s8: (v) => `${v}`, u16: (v) => `${v}`, s16: (v) => `${v}`,
  u32: (v) => `${v}`, s32: (v) => `${v}`, u64: (v) => `${v}`, s64: (v) => `${v}`,
  f32: (v) => `${v}`, f64: (v) => `${v}`,
};

const ZERO: Record<CoreTy, string> = { i32: '0', i64: '0n', f32: '0', f64: '0' };
const CORE_TS: Record<CoreTy, string> = { i32: 'number', i64: 'bigint', f32: 'number', f64: 'number' };

class Emitter {
  readonly pkg: Package;
  readonly helpers: string[] = [];
  readonly done = new Set<string>();
  private tmp = 0;

  constructor(pkg: Package) {
    this.pkg = pkg;
  }

  fresh(base: string): string {
    return `${base}${this.tmp++}`;
  }

  loadExpr(t: Ty, p: string): string {
    const r = resolve(this.pkg, t);
    if (r.k === 'prim') return LOAD[r.name]!(p);
    this.ensure(r);
    return `load_${mangle(this.pkg, r)}(m, ${p})`;
  }

  storeStmt(t: Ty, v: string, p: string): string {
    const r = resolve(this.pkg, t);
    if (r.k === 'prim') return STORE[r.name]!(v, p);
    this.ensure(r);
    return `store_${mangle(this.pkg, r)}(m, ${v}, ${p});`;
  }

  /** Emits the load/store helpers of a compound type once. */
  ensure(t: Ty): void {
    const name = mangle(this.pkg, t);
    if (this.done.has(name)) return;
    this.done.add(name);
    const ts = tsType(this.pkg, t);
    const lay = layout(this.pkg, t);
    let load = '';
    let store = '';
    if (t.k === 'list') {
      const el = resolve(this.pkg, t.el);
      if (el.k === 'prim' && el.name === 'u8') {
        load = `return m.readBytes(m.dv.getUint32(p, true), m.dv.getUint32(p + 4, true));`;
        store = `const lp = m.writeBytes(v);\n  m.dv.setUint32(p, lp, true);\n  m.dv.setUint32(p + 4, v.length, true);`;
      } else {
        const el_ = layout(this.pkg, t.el);
        load = [
          `const base = m.dv.getUint32(p, true);`,
          `const n = m.dv.getUint32(p + 4, true);`,
          `m.checkList(base, n, ${el_.size});`,
          `const out: ${ts} = new Array(n);`,
          `for (let i = 0; i < n; i++) out[i] = ${this.loadExpr(t.el, `base + i * ${el_.size}`)};`,
          `return out;`,
        ].join('\n  ');
        store = [
          `const n = v.length;`,
          `const base = n === 0 ? ${el_.align} : m.alloc(n * ${el_.size}, ${el_.align});`,
          `for (let i = 0; i < n; i++) ${this.storeStmt(t.el, 'v[i]!', `base + i * ${el_.size}`)}`,
          `m.dv.setUint32(p, base, true);`,
          `m.dv.setUint32(p + 4, n, true);`,
        ].join('\n  ');
      }
    } else if (fieldTypes(this.pkg, t)) {
      const fts = fieldTypes(this.pkg, t)!;
      const offs = fieldOffsets(this.pkg, t);
      if (t.k === 'tuple') {
        load = `return [${fts.map((f, i) => this.loadExpr(f, `p + ${offs[i]}`)).join(', ')}];`;
        store = fts.map((f, i) => this.storeStmt(f, `v[${i}]`, `p + ${offs[i]}`)).join('\n  ');
      } else {
        const d = this.pkg.types.get((t as { name: string }).name) as Extract<TypeDef, { kind: 'record' }>;
        load = `return {\n${d.fields.map((f, i) => `    ${camel(f.name)}: ${this.loadExpr(f.ty, `p + ${offs[i]}`)},`).join('\n')}\n  };`;
        store = d.fields.map((f, i) => this.storeStmt(f.ty, `v.${camel(f.name)}`, `p + ${offs[i]}`)).join('\n  ');
      }
    } else {
      const cases = casesOf(this.pkg, t)!;
      const ds = discSize(cases.length);
      const getD = ds === 1 ? 'm.dv.getUint8(p)' : ds === 2 ? 'm.dv.getUint16(p, true)' : 'm.dv.getUint32(p, true)';
      const setD = (i: number): string => (ds === 1 ? `m.dv.setUint8(p, ${i});` : ds === 2 ? `m.dv.setUint16(p, ${i}, true);` : `m.dv.setUint32(p, ${i}, true);`);
      const po = payloadOffset(this.pkg, t);
      const pp = `p + ${po}`;
      if (t.k === 'option') {
        load = `return ${getD} === 0 ? undefined : ${this.loadExpr(t.t, pp)};`;
        // A discriminant other than 0/1 is a guest bug; the canonical ABI traps.
        load = `const d = ${getD};\n  if (d > 1) throw new AbiTrap('invalid option discriminant ' + d);\n  return d === 0 ? undefined : ${this.loadExpr(t.t, pp)};`;
        store = `if (v === undefined) { ${setD(0)} } else { ${setD(1)} ${this.storeStmt(t.t, 'v', pp)} }`;
      } else if (t.k === 'result') {
        load = [
          `const d = ${getD};`,
          `if (d === 0) return { tag: 'ok', val: ${t.ok ? this.loadExpr(t.ok, pp) : 'undefined'} };`,
          `if (d === 1) return { tag: 'err', val: ${t.err ? this.loadExpr(t.err, pp) : 'undefined'} };`,
          `throw new AbiTrap('invalid result discriminant ' + d);`,
        ].join('\n  ');
        store = `if (v.tag === 'ok') { ${setD(0)} ${t.ok ? this.storeStmt(t.ok, 'v.val', pp) : ''} } else { ${setD(1)} ${t.err ? this.storeStmt(t.err, 'v.val', pp) : ''} }`;
      } else {
        const d = this.pkg.types.get((t as { name: string }).name) as Extract<TypeDef, { kind: 'variant' | 'enum' }>;
        const CASES = `${snake(d.name).toUpperCase()}_CASES`;
        if (d.kind === 'enum') {
          this.helpers.push(`const ${CASES} = ${JSON.stringify(d.cases.map((c) => c.name))} as const;\n`);
          load = `const d = ${getD};\n  if (d >= ${d.cases.length}) throw new AbiTrap('invalid ${d.name} discriminant ' + d);\n  return ${CASES}[d]!;`;
          store = `switch (v) {\n${d.cases.map((c, i) => `    case '${c.name}': ${setD(i)} break;`).join('\n')}\n    default: throw new TypeError('invalid ${d.name}: ' + String(v));\n  }`;
        } else {
          load = [
            `switch (${getD}) {`,
            ...d.cases.map((c, i) => `    case ${i}: return { tag: '${c.name}'${c.ty ? `, val: ${this.loadExpr(c.ty, pp)}` : ''} };`),
            `    default: throw new AbiTrap('invalid ${d.name} discriminant ' + ${getD});`,
            `  }`,
          ].join('\n  ');
          store = [
            `switch (v.tag) {`,
            ...d.cases.map((c, i) => `    case '${c.name}': ${setD(i)}${c.ty ? ` ${this.storeStmt(c.ty, 'v.val', pp)}` : ''} break;`),
            `    default: throw new TypeError('invalid ${d.name} tag: ' + String((v as { tag: unknown }).tag));`,
            `  }`,
          ].join('\n  ');
        }
      }
    }
    this.helpers.push(
      `/** ${ts}: ${lay.size} bytes, align ${lay.align}. */\n` +
      `function load_${name}(m: GuestMemory, p: number): ${ts} {\n  ${load}\n}\n\n` +
      `function store_${name}(m: GuestMemory, v: ${ts}, p: number): void {\n  ${store}\n}\n`,
    );
  }

  /** Statements lowering `v` into flat slots (already declared `let` vars). */
  lowerFlat(t: Ty, v: string, slots: readonly string[]): string {
    const r = resolve(this.pkg, t);
    const lay = layout(this.pkg, r);
    if (r.k === 'prim') {
      if (r.name === 'string') return `${slots[0]} = m.writeString(${v}); ${slots[1]} = m.len;`;
      return `${slots[0]} = ${LOWER_FLAT[r.name]!(v)};`;
    }
    if (r.k === 'list') {
      const el = resolve(this.pkg, r.el);
      if (el.k === 'prim' && el.name === 'u8') return `${slots[0]} = m.writeBytes(${v}); ${slots[1]} = ${v}.length;`;
      // Other lists go through a temporary 8-byte cell so the memory helper can be reused.
      this.ensure(r);
      const cell = this.fresh('cell');
      return `{ const ${cell} = m.alloc(8, 4); store_${mangle(this.pkg, r)}(m, ${v}, ${cell}); ${slots[0]} = m.dv.getUint32(${cell}, true); ${slots[1]} = m.dv.getUint32(${cell} + 4, true); }`;
    }
    const fts = fieldTypes(this.pkg, r);
    if (fts) {
      let i = 0;
      const names = r.k === 'tuple' ? fts.map((_, j) => `[${j}]`) : (this.pkg.types.get((r as { name: string }).name) as Extract<TypeDef, { kind: 'record' }>).fields.map((f) => `.${camel(f.name)}`);
      return fts.map((f, j) => {
        const n = layout(this.pkg, f).flat.length;
        const s = this.lowerFlat(f, `${v}${names[j]}`, slots.slice(i, i + n));
        i += n;
        return s;
      }).join('\n  ');
    }
    // Variant-like: discriminant, then the case's payload in the joined slots.
    const cases = casesOf(this.pkg, r)!;
    const lowerCase = (ct: Ty | undefined, val: string): string => {
      if (!ct) return '';
      const cf = layout(this.pkg, ct).flat;
      cf.forEach((ft, j) => {
        if (ft !== lay.flat[j + 1]) throw new Error(`codec generator: flat join ${ft}→${lay.flat[j + 1]} is not supported (${mangle(this.pkg, r)})`);
      });
      return this.lowerFlat(ct, val, slots.slice(1, 1 + cf.length));
    };
    if (r.k === 'option') return `if (${v} === undefined) { ${slots[0]} = 0; } else { ${slots[0]} = 1; ${lowerCase(r.t, v)} }`;
    if (r.k === 'result') return `if (${v}.tag === 'ok') { ${slots[0]} = 0; ${lowerCase(r.ok, `${v}.val`)} } else { ${slots[0]} = 1; ${lowerCase(r.err, `${v}.val`)} }`;
    const d = this.pkg.types.get((r as { name: string }).name) as Extract<TypeDef, { kind: 'variant' | 'enum' }>;
    if (d.kind === 'enum') {
      return `switch (${v}) {\n${d.cases.map((c, i) => `    case '${c.name}': ${slots[0]} = ${i}; break;`).join('\n')}\n    default: throw new TypeError('invalid ${d.name}: ' + String(${v}));\n  }`;
    }
    return `switch (${v}.tag) {\n${d.cases.map((c, i) => `    case '${c.name}': ${slots[0]} = ${i}; ${lowerCase(c.ty, `${v}.val`)} break;`).join('\n')}\n    default: throw new TypeError('invalid ${d.name}');\n  }`;
  }

  /** Expression lifting a value from flat core values `xs`. */
  liftFlat(t: Ty, xs: readonly string[]): string {
    const r = resolve(this.pkg, t);
    const lay = layout(this.pkg, r);
    if (r.k === 'prim') {
      if (r.name === 'string') return `m.readString(${xs[0]}, ${xs[1]})`;
      return LIFT_FLAT[r.name]!(xs[0]!);
    }
    if (r.k === 'list') {
      const el = resolve(this.pkg, r.el);
      if (el.k === 'prim' && el.name === 'u8') return `m.readBytes(${xs[0]}, ${xs[1]})`;
      this.ensure(r);
      const el_ = layout(this.pkg, r.el);
      this.ensureFlatList(r);
      return `liftlist_${mangle(this.pkg, r)}(m, ${xs[0]}, ${xs[1]}, ${el_.size})`;
    }
    const fts = fieldTypes(this.pkg, r);
    if (fts) {
      let i = 0;
      const parts = fts.map((f) => {
        const n = layout(this.pkg, f).flat.length;
        const e = this.liftFlat(f, xs.slice(i, i + n));
        i += n;
        return e;
      });
      if (r.k === 'tuple') return `[${parts.join(', ')}]`;
      const d = this.pkg.types.get((r as { name: string }).name) as Extract<TypeDef, { kind: 'record' }>;
      return `{ ${d.fields.map((f, j) => `${camel(f.name)}: ${parts[j]}`).join(', ')} }`;
    }
    const cases = casesOf(this.pkg, r)!;
    const liftCase = (ct: Ty | undefined): string => {
      if (!ct) return 'undefined';
      const cf = layout(this.pkg, ct).flat;
      cf.forEach((ft, j) => {
        if (ft !== lay.flat[j + 1]) throw new Error(`codec generator: flat join ${ft}→${lay.flat[j + 1]} is not supported (${mangle(this.pkg, r)})`);
      });
      return this.liftFlat(ct, xs.slice(1, 1 + cf.length));
    };
    if (r.k === 'option') return `(${xs[0]} === 0 ? undefined : ${liftCase(r.t)})`;
    if (r.k === 'result') return `(${xs[0]} === 0 ? { tag: 'ok' as const, val: ${liftCase(r.ok)} } : { tag: 'err' as const, val: ${liftCase(r.err)} })`;
    const d = this.pkg.types.get((r as { name: string }).name) as Extract<TypeDef, { kind: 'variant' | 'enum' }>;
    if (d.kind === 'enum') {
      this.ensure(r);
      return `enumAt(${snake(d.name).toUpperCase()}_CASES, ${xs[0]}, '${d.name}')`;
    }
    void cases;
    throw new Error(`codec generator: flat variant ${d.name} in a lifted position is not supported`);
  }

  ensureFlatList(t: Ty & { k: 'list' }): void {
    const name = `liftlist_${mangle(this.pkg, t)}`;
    if (this.done.has(name)) return;
    this.done.add(name);
    this.helpers.push(
      `function ${name}(m: GuestMemory, base: number, n: number, size: number): ${tsType(this.pkg, t)} {\n` +
      `  m.checkList(base, n, size);\n  const out: ${tsType(this.pkg, t)} = new Array(n);\n` +
      `  for (let i = 0; i < n; i++) out[i] = ${this.loadExpr(t.el, 'base + i * size')};\n  return out;\n}\n`,
    );
  }
}

function emitTypes(pkg: Package): string {
  let out = '';
  for (const iface of pkg.interfaces) {
    for (const d of iface.types) {
      out += docComment(d.doc);
      const name = pascal(d.name);
      if (d.kind === 'alias') out += `export type ${name} = ${tsType(pkg, d.ty)};\n\n`;
      else if (d.kind === 'record') {
        out += `export interface ${name} {\n${d.fields.map((f) => `${docComment(f.doc, '  ')}  ${camel(f.name)}: ${tsType(pkg, f.ty)};`).join('\n')}\n}\n\n`;
      } else if (d.kind === 'enum') {
        out += `export type ${name} =\n${d.cases.map((c) => `${docComment(c.doc, '  ')}  | '${c.name}'`).join('\n')};\n\n`;
      } else {
        out += `export type ${name} =\n${d.cases.map((c) => `${docComment(c.doc, '  ')}  | { tag: '${c.name}'${c.ty ? `; val: ${tsType(pkg, c.ty)}` : ''} }`).join('\n')};\n\n`;
      }
    }
  }
  return out;
}

const HEADER = (what: string): string =>
  `// GENERATED by plugin-abi/src/gen/main.ts from wit/weir.wit — do not edit.\n` +
  `// Regenerate: node_modules/.bin/node plugin-abi/src/gen/main.ts\n` +
  `// ${what}\n`;

export interface Generated {
  readonly types: string;
  readonly codec: string;
}

/** Core-module names of one export under both naming schemes `jco new` accepts. */
/**
 * Exports a component may leave out: on-tick came after the first 0.2 plugins were built,
 * and a plugin that has no timer needs none. The codec resolves them to undefined.
 */
export const OPTIONAL_EXPORTS: ReadonlySet<string> = new Set(['on-tick']);

export function coreExportNames(f: Func): { fn: string[]; post: string[] } {
  return { fn: [`cm32p2||${f.name}`, f.name], post: [`cm32p2||${f.name}_post`, `cabi_post_${f.name}`] };
}

/** Core import module names of an imported interface, both naming schemes. */
export function coreImportModules(pkg: Package, iface: string): string[] {
  const [maj, min] = pkg.version.split('.');
  // cm32p2 names carry the version up to the first non-zero part (0.1.0 → 0.1).
  const short = maj !== '0' ? maj : `${maj}.${min}`;
  return [`cm32p2|${pkg.name}/${iface}@${short}`, `${pkg.name}/${iface}@${pkg.version}`];
}

export function emit(pkg: Package, world: World, opts: EmitOptions): Generated {
  const e = new Emitter(pkg);
  const types = HEADER('TypeScript types of the weir:proxy WIT package.') +
    `\n/** A WIT result: ok or err with a payload. */\nexport type Result<T, E> = { tag: 'ok'; val: T } | { tag: 'err'; val: E };\n\n` +
    emitTypes(pkg);

  const typeNames = [...pkg.types.values()].map((d) => pascal(d.name));
  const exportsCode: string[] = [];
  const fnsFields: string[] = [];
  const bindLines: string[] = [];

  for (const f of world.exports) {
    const abi = funcAbi(pkg, f.params.map((p) => p.ty), f.result, 'export');
    const key = camel(f.name);
    const names = coreExportNames(f);
    const coreSig = `(${abi.coreParams.map((t, i) => `a${i}: ${CORE_TS[t]}`).join(', ')}) => ${abi.coreResults.length ? CORE_TS[abi.coreResults[0]!] : 'void'}`;
    // Post-return takes the result pointer, or nothing when the export has no result.
    const optional = OPTIONAL_EXPORTS.has(f.name);
    fnsFields.push(`  ${key}: ${optional ? `(${coreSig}) | undefined` : coreSig};`, `  ${key}Post: ((${abi.coreResults.length ? 'r: number' : ''}) => void) | undefined;`);
    bindLines.push(
      `    ${key}: ${optional ? 'find' : 'need'}(exports, ${JSON.stringify(names.fn)}) as CoreFunctions['${key}'],`,
      `    ${key}Post: find(exports, ${JSON.stringify(names.post)}) as CoreFunctions['${key}Post'],`,
    );
    const params = f.params.map((p) => `${camel(p.name)}: ${tsType(pkg, p.ty)}`);
    const ret = f.result ? tsType(pkg, f.result) : 'void';
    const body: string[] = ['const m = inst.mem;'];
    let args: string[];
    if (abi.paramsInMemory) {
      const tl = layout(pkg, abi.paramsTuple);
      const offs = fieldOffsets(pkg, abi.paramsTuple);
      body.push(`const a = m.alloc(${tl.size}, ${tl.align});`);
      f.params.forEach((p, i) => body.push(e.storeStmt(p.ty, camel(p.name), `a + ${offs[i]}`)));
      args = ['a'];
    } else {
      args = abi.coreParams.map((_, i) => `a${i}`);
      if (args.length) body.push(`let ${abi.coreParams.map((t, i) => `a${i}: ${CORE_TS[t]} = ${ZERO[t]}`).join(', ')};`);
      let i = 0;
      for (const p of f.params) {
        const n = layout(pkg, p.ty).flat.length;
        body.push(e.lowerFlat(p.ty, camel(p.name), args.slice(i, i + n)));
        i += n;
      }
    }
    // An optional export the module lacks is never called: the host checks at load.
    const callLine = (callee: string): string => `${f.result ? 'const r = ' : ''}${callee}${optional ? '!' : ''}(${args.join(', ')});`;
    const tail: string[] = [];
    if (f.result) {
      tail.push('m.sync();');
      tail.push(`const out = ${abi.resultInMemory ? e.loadExpr(f.result, 'r') : e.liftFlat(f.result, ['r'])};`);
      tail.push(`if (inst.fns.${key}Post !== undefined) inst.fns.${key}Post(r);`);
      tail.push('return out;');
    } else {
      tail.push(`if (inst.fns.${key}Post !== undefined) inst.fns.${key}Post();`);
    }
    const fnName = `call${pascal(f.name)}`;
    exportsCode.push(
      `${docComment(f.doc)}export function ${fnName}(${['inst: CoreInstance', ...params].join(', ')}): ${ret} {\n  ${[...body, callLine(`inst.fns.${key}`), ...tail].join('\n  ')}\n}\n`,
      `/** ${fnName} for an instance whose host imports suspend (JSPI); one call in flight per instance. */\n` +
      `export async function ${fnName}Async(${['inst: CoreInstance', ...params].join(', ')}): Promise<${ret}> {\n  ${[...body, callLine(`await inst.promising.${key}`), ...tail].join('\n  ')}\n}\n`,
    );
  }

  // Host imports.
  const hostIfaceLines: string[] = [];
  const importObjs: string[] = [];
  const asyncSet = new Set(opts.asyncImports);
  for (const ifName of world.imports) {
    const iface = pkg.interfaces.find((i) => i.name === ifName)!;
    const entries: string[] = [];
    for (const f of iface.funcs) {
      const abi = funcAbi(pkg, f.params.map((p) => p.ty), f.result, 'import');
      const key = camel(f.name);
      const isAsync = asyncSet.has(f.name);
      const ret = f.result ? tsType(pkg, f.result) : 'void';
      hostIfaceLines.push(`${docComment(f.doc, '  ')}  ${key}(${f.params.map((p) => `${camel(p.name)}: ${tsType(pkg, p.ty)}`).join(', ')}): ${isAsync ? `${ret} | Promise<${ret}>` : ret};`);
      const coreArgs = abi.coreParams.map((t, i) => `a${i}: ${CORE_TS[t]}`);
      let lifted: string[];
      if (abi.paramsInMemory) {
        const offs = fieldOffsets(pkg, abi.paramsTuple);
        lifted = f.params.map((p, i) => e.loadExpr(p.ty, `a0 + ${offs[i]}`));
      } else {
        let i = 0;
        lifted = f.params.map((p) => {
          const n = layout(pkg, p.ty).flat.length;
          const xs = abi.coreParams.slice(i, i + n).map((_, j) => `a${i + j}`);
          i += n;
          return e.liftFlat(p.ty, xs);
        });
      }
      const retptr = `a${abi.coreParams.length - 1}`;
      const hostCall = `host.${key}(${lifted.join(', ')})`;
      const finish = (r: string): string => {
        if (!f.result) return '';
        if (abi.resultInMemory) return `m.sync();\n        ${e.storeStmt(f.result, r, retptr)}`;
        const rr = resolve(pkg, f.result);
        if (rr.k !== 'prim') throw new Error(`codec generator: flat non-primitive import result in ${f.name}`);
        return `return ${LOWER_FLAT[rr.name]!(r)};`;
      };
      const coreRet = abi.coreResults.length ? CORE_TS[abi.coreResults[0]!] : 'void';
      if (isAsync) {
        entries.push(
          `      '${f.name}': jspi\n` +
          `        ? suspending(async (${coreArgs.join(', ')}): Promise<${coreRet}> => {\n        m.sync();\n        const r = await ${hostCall};\n        ${finish('r')}\n      })\n` +
          `        : (${coreArgs.join(', ')}): ${coreRet} => {\n        m.sync();\n        const r = ${hostCall};\n        if (r instanceof Promise) throw new AbiTrap('${f.name} returned a promise but the instance was not set up for JSPI');\n        ${finish('r')}\n      },`,
        );
      } else {
        entries.push(`      '${f.name}': (${coreArgs.join(', ')}): ${coreRet} => {\n        m.sync();\n        ${f.result ? `const r = ${hostCall};\n        ${finish('r')}` : `${hostCall};`}\n      },`);
      }
    }
    const mods = coreImportModules(pkg, ifName);
    importObjs.push(`  const ${camel(ifName)}Fns = {\n${entries.join('\n')}\n  };`);
    importObjs.push(...mods.map((mod) => `  imports[${JSON.stringify(mod)}] = ${camel(ifName)}Fns;`));
  }

  const codec = HEADER(`Canonical-ABI codec for world \`${world.name}\`: direct calls into a plugin's core module.`) +
    `import { AbiTrap, GuestMemory } from '../src/abi/guest-memory.ts';\n` +
    `import { enumAt, find, need, promising, suspending } from '../src/abi/core.ts';\n` +
    `import type { PromisingFn, WasmExports, WasmImports, WasmMemory } from '../src/abi/wasm.ts';\n` +
    `import type {\n  ${['Result', ...typeNames].join(',\n  ')},\n} from './types.ts';\n\n` +
    `/** The raw core-wasm exports of a plugin, resolved once per instance. */\n` +
    `export interface CoreFunctions {\n${fnsFields.join('\n')}\n}\n\n` +
    `/** One instantiated plugin core module, ready for the call* functions. */\n` +
    `export interface CoreInstance {\n  readonly mem: GuestMemory;\n  readonly fns: CoreFunctions;\n` +
    `  /** JSPI-wrapped exports, for the call*Async functions. */\n  readonly promising: { readonly [K in keyof CoreFunctions]: PromisingFn };\n}\n\n` +
    `/**\n * Resolves a core instance's exports (either naming scheme of \`jco new\`) and attaches its\n` +
    ` * memory to \`mem\` — the same GuestMemory passed to hostImports before instantiation.\n */\n` +
    `export function bindCoreInstance(mem: GuestMemory, exports: WasmExports): CoreInstance {\n` +
    `  const memory = need(exports, ['cm32p2_memory', 'memory']) as WasmMemory;\n` +
    `  const realloc = need(exports, ['cm32p2_realloc', 'cabi_realloc']) as (a: number, b: number, c: number, d: number) => number;\n` +
    `  mem.attach(memory, realloc);\n` +
    `  const fns: CoreFunctions = {\n${bindLines.join('\n')}\n  };\n` +
    `  let wrapped: CoreInstance['promising'] | undefined;\n  return { mem, fns, get promising() { return (wrapped ??= promising(fns)); } };\n}\n\n` +
    `/** Functions the host implements for the plugin; the codec lifts guest arguments and lowers results. */\n` +
    `export interface HostImports {\n${hostIfaceLines.join('\n')}\n}\n\n` +
    `/**\n * The import object for a plugin core module, under both naming schemes of \`jco new\`.\n` +
    ` * With \`jspi\`, async host functions suspend the guest and exports must be called through call*Async.\n */\n` +
    `export function hostImports(host: HostImports, m: GuestMemory, jspi = false): WasmImports {\n` +
    `  const imports: WasmImports = {};\n${importObjs.join('\n')}\n  return imports;\n}\n\n` +
    exportsCode.join('\n') + '\n' +
    `// ---- per-type load/store helpers ----\n\n` + e.helpers.join('\n');
  return { types, codec };
}
