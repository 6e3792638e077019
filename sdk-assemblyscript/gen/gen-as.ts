/**
 * Generates the AssemblyScript bindings of the plugin world (wit-bindgen has no AssemblyScript
 * target):
 *   node_modules/.bin/node sdk-assemblyscript/gen/gen-as.ts
 * Layouts come from the layout.json the ABI generator makes from wit/weir.wit (computed fresh,
 * so the output follows the WIT even before plugin-abi/generated/ is regenerated); docs come
 * from the WIT itself. test/sdk-as/generated.test.ts fails when the committed files are stale.
 *
 * Output: assembly/generated/abi.ts (types, lifting/lowering, host imports, export glue) and
 * assembly/generated/exports.ts (the core exports a plugin's entry file re-exports).
 * AssemblyScript identifiers cannot contain '-', so exports are named `weir_x_<snake>` and
 * `weir_post_<snake>`; `weir plugin build` renames them to the ABI names after compiling.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generate as generateAbi } from '../../plugin-abi/src/gen/main.ts';
import { parseWit, type Package } from '../../plugin-abi/src/gen/wit.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const WIT_PATH = `${ROOT}wit/weir.wit`;
export const OUT_DIR = `${ROOT}sdk-assemblyscript/assembly/generated/`;
export const EXPORT_PREFIX = 'weir_x_';
export const POST_PREFIX = 'weir_post_';

// ---- layout.json shapes ----

type TyJ = string | { ref: string } | { list: TyJ } | { option: TyJ } | { result: { ok: TyJ | null; err: TyJ | null } } | { tuple: TyJ[] };
type Core = 'i32' | 'i64' | 'f32' | 'f64';
interface FieldJ { name: string; type: TyJ; offset: number }
interface CaseJ { name: string; index: number; type: TyJ | null }
interface TypeJ { kind: 'alias' | 'record' | 'variant' | 'enum'; size: number; align: number; flat: Core[]; type?: TyJ; fields?: FieldJ[]; discriminantSize?: number; payloadOffset?: number; cases?: CaseJ[] }
interface ParamJ { name: string; type: TyJ; flat: Core[]; memoryOffset: number }
interface CoreJ { params: Core[]; results: Core[]; paramsInMemory: boolean; resultInMemory: boolean; paramsTuple: { size: number; align: number } | null }
interface FuncJ { name: string; params: ParamJ[]; result: { type: TyJ; size: number; align: number; flat: Core[] } | null; core: CoreJ; coreNames?: { fn: string[]; post: string[] } }
interface LayoutJ { package: string; world: string; types: Record<string, TypeJ>; imports: { interface: string; coreModules: string[]; funcs: FuncJ[] }[]; exports: FuncJ[] }

// ---- names ----

const camel = (s: string): string => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const pascal = (s: string): string => camel(s).replace(/^[a-z]/, (c) => c.toUpperCase());
const snake = (s: string): string => s.replace(/-/g, '_');

const PRIM_AS: Record<string, string> = { bool: 'bool', u8: 'u8', u16: 'u16', u32: 'u32', u64: 'u64', s8: 'i8', s16: 'i16', s32: 'i32', s64: 'i64', f32: 'f32', f64: 'f64', string: 'string' };
const PRIM_SIZE: Record<string, number> = { bool: 1, u8: 1, s8: 1, u16: 2, s16: 2, u32: 4, s32: 4, f32: 4, u64: 8, s64: 8, f64: 8, string: 8 };
const PRIM_FLAT: Record<string, Core> = { bool: 'i32', u8: 'i32', s8: 'i32', u16: 'i32', s16: 'i32', u32: 'i32', s32: 'i32', u64: 'i64', s64: 'i64', f32: 'f32', f64: 'f64' };

const alignTo = (n: number, a: number): number => Math.ceil(n / a) * a;
function joinCore(a: Core, b: Core): Core {
  if (a === b) return a;
  if ((a === 'i32' && b === 'f32') || (a === 'f32' && b === 'i32')) return 'i32';
  return 'i64';
}

function doc(text: string, indent = ''): string {
  if (!text) return '';
  const lines = text.split('\n');
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((l) => `${indent} * ${l}`.trimEnd()).join('\n')}\n${indent} */\n`;
}

class Gen {
  readonly L: LayoutJ;
  readonly pkg: Package;
  /** Helper functions emitted on demand, by name. */
  readonly helpers = new Map<string, string>();
  /** Result classes (one per result<ok, err> instance), by name. */
  readonly resultClasses = new Map<string, string>();
  constructor(L: LayoutJ, pkg: Package) {
    this.L = L;
    this.pkg = pkg;
  }

  named(name: string): TypeJ {
    const t = this.L.types[name];
    if (!t) throw new Error(`gen-as: unknown type ${name}`);
    return t;
  }

  /** Follows aliases. */
  resolve(t: TyJ): TyJ {
    while (typeof t === 'object' && 'ref' in t) {
      const d = this.named(t.ref);
      if (d.kind !== 'alias') return t;
      t = d.type!;
    }
    return t;
  }

  kind(t: TyJ): 'prim' | 'string' | 'bytes' | 'list' | 'option' | 'result' | 'record' | 'variant' | 'enum' {
    const r = this.resolve(t);
    if (typeof r === 'string') return r === 'string' ? 'string' : 'prim';
    if ('list' in r) return r.list === 'u8' ? 'bytes' : 'list';
    if ('option' in r) return 'option';
    if ('result' in r) return 'result';
    if ('tuple' in r) throw new Error('gen-as: tuples are not supported');
    return this.named(r.ref).kind as 'record' | 'variant' | 'enum';
  }

  /** Whether the AS type is a reference (nullable) type. */
  isRef(t: TyJ): boolean {
    const k = this.kind(t);
    return k !== 'prim' && k !== 'enum';
  }

  mangle(t: TyJ): string {
    if (typeof t === 'string') return t;
    if ('ref' in t) return snake(t.ref);
    if ('list' in t) return `list_${this.mangle(t.list)}`;
    if ('option' in t) return `option_${this.mangle(t.option)}`;
    if ('result' in t) return `result_${t.result.ok ? this.mangle(t.result.ok) : 'unit'}_${t.result.err ? this.mangle(t.result.err) : 'unit'}`;
    throw new Error('gen-as: tuples are not supported');
  }

  asType(t: TyJ): string {
    if (typeof t === 'string') return PRIM_AS[t]!;
    if ('ref' in t) return pascal(t.ref);
    if ('list' in t) return t.list === 'u8' ? 'Uint8Array' : `Array<${this.asType(t.list)}>`;
    if ('option' in t) return this.isRef(t.option) ? `${this.asType(t.option)} | null` : `Box<${this.asType(t.option)}>`.concat(' | null');
    if ('result' in t) return this.resultClass(t);
    throw new Error('gen-as: tuples are not supported');
  }

  /** The value a field of type `t` starts with. */
  defaultOf(t: TyJ): string {
    const k = this.kind(t);
    switch (k) {
      case 'prim': return this.resolve(t) === 'bool' ? 'false' : '0';
      case 'enum': return `<${this.asType(t)}>0`;
      case 'string': return '""';
      case 'bytes': return 'new Uint8Array(0)';
      case 'list': return `new ${this.asType(t)}(0)`;
      case 'option': return 'null';
      default: return `new ${this.asType(t)}()`;
    }
  }

  sizeAlign(t: TyJ): { size: number; align: number } {
    if (typeof t === 'string') return { size: PRIM_SIZE[t]!, align: t === 'string' ? 4 : PRIM_SIZE[t]! };
    if ('ref' in t) { const d = this.named(t.ref); return { size: d.size, align: d.align }; }
    if ('list' in t) return { size: 8, align: 4 };
    const cases = this.casesOf(t)!;
    return this.variantLayout(cases.map((c) => c.type));
  }

  variantLayout(payloads: (TyJ | null)[]): { size: number; align: number; payloadOffset: number; disc: number } {
    const disc = payloads.length <= 256 ? 1 : payloads.length <= 65536 ? 2 : 4;
    let align = disc;
    let size = 0;
    for (const p of payloads) {
      if (!p) continue;
      const l = this.sizeAlign(p);
      align = Math.max(align, l.align);
      size = Math.max(size, l.size);
    }
    const payloadOffset = alignTo(disc, align);
    return { size: alignTo(payloadOffset + size, align), align, payloadOffset, disc };
  }

  /** Cases of option/result/variant/enum, in order, with payload types. */
  casesOf(t: TyJ): { name: string; type: TyJ | null }[] | undefined {
    const r = this.resolve(t);
    if (typeof r === 'string') return undefined;
    if ('option' in r) return [{ name: 'none', type: null }, { name: 'some', type: r.option }];
    if ('result' in r) return [{ name: 'ok', type: r.result.ok }, { name: 'err', type: r.result.err }];
    if ('ref' in r) {
      const d = this.named(r.ref);
      if (d.kind === 'variant' || d.kind === 'enum') return d.cases!.map((c) => ({ name: c.name, type: c.type }));
    }
    return undefined;
  }

  flat(t: TyJ): Core[] {
    const r = this.resolve(t);
    if (typeof r === 'string') return r === 'string' ? ['i32', 'i32'] : [PRIM_FLAT[r]!];
    if ('list' in r) return ['i32', 'i32'];
    if ('ref' in r) return this.named(r.ref).flat;
    const cases = this.casesOf(r)!;
    const joined: Core[] = [];
    for (const c of cases) {
      if (!c.type) continue;
      this.flat(c.type).forEach((f, i) => { joined[i] = joined[i] === undefined ? f : joinCore(joined[i]!, f); });
    }
    return ['i32', ...joined];
  }

  payloadOffset(t: TyJ): number {
    const r = this.resolve(t);
    if (typeof r === 'object' && 'ref' in r) return this.named(r.ref).payloadOffset!;
    return this.variantLayout(this.casesOf(r)!.map((c) => c.type)).payloadOffset;
  }

  discSize(t: TyJ): number {
    const r = this.resolve(t);
    if (typeof r === 'object' && 'ref' in r) return this.named(r.ref).discriminantSize!;
    return 1;
  }

  resultClass(t: { result: { ok: TyJ | null; err: TyJ | null } }): string {
    const name = `Result${t.result.ok ? pascal(this.mangle(t.result.ok).replace(/_/g, '-')) : 'Unit'}${t.result.err ? pascal(this.mangle(t.result.err).replace(/_/g, '-')) : 'Unit'}`;
    if (this.resultClasses.has(name)) return name;
    this.resultClasses.set(name, '');
    const { ok, err } = t.result;
    const field = (n: 'ok' | 'err', ty: TyJ | null): string => (ty ? `  ${n}: ${this.isRef(ty) ? `${this.asType(ty)} | null` : this.asType(ty)} = ${this.isRef(ty) ? 'null' : this.defaultOf(ty)};\n` : '');
    const ctor = (n: 'ok' | 'err', ty: TyJ | null): string => ty
      ? `  static ${n}(v: ${this.asType(ty)}): ${name} { const r = new ${name}(); r.isErr = ${n === 'err'}; r.${n} = v; return r; }\n`
      : `  static ${n}(): ${name} { const r = new ${name}(); r.isErr = ${n === 'err'}; return r; }\n`;
    this.resultClasses.set(name,
      `/** result<${t.result.ok ? this.mangle(t.result.ok) : '_'}, ${t.result.err ? this.mangle(t.result.err) : '_'}>: ok unless isErr. */\n` +
      `export class ${name} {\n  isErr: bool = false;\n${field('ok', ok)}${field('err', err)}${ctor('ok', ok)}${ctor('err', err)}}\n`);
    return name;
  }

  // ---- memory lifting: load_<m>(p) ----

  /** Expression reading a value of type `t` stored at address expression `p`. */
  load(t: TyJ, p: string): string {
    const r = this.resolve(t);
    if (typeof r === 'string') {
      switch (r) {
        case 'bool': return `load<u8>(${p}) != 0`;
        case 'string': return `liftString(<usize>load<u32>(${p}), <usize>load<u32>(${p}, 4))`;
        default: return `load<${PRIM_AS[r]}>(${p})`;
      }
    }
    if ('list' in r && r.list === 'u8') return `liftBytes(<usize>load<u32>(${p}), <usize>load<u32>(${p}, 4))`;
    if (this.kind(r) === 'enum') return `<${this.asType(r)}>load<u${this.discSize(r) * 8}>(${p})`;
    return `${this.loadFn(r)}(${p})`;
  }

  loadFn(t: TyJ): string {
    const name = `load_${this.mangle(t)}`;
    if (this.helpers.has(name)) return name;
    this.helpers.set(name, '');
    const T = this.asType(t);
    const k = this.kind(t);
    let body = '';
    if (k === 'list') {
      const el = (t as { list: TyJ }).list;
      const { size } = this.sizeAlign(el);
      body = `  const ptr = <usize>load<u32>(p);\n  const n = <i32>load<u32>(p, 4);\n  const out = new ${T}(n);\n` +
        `  for (let i = 0; i < n; i++) unchecked(out[i] = ${this.load(el, `ptr + <usize>i * ${size}`)});\n  return out;\n`;
    } else if (k === 'record') {
      const d = this.named((t as { ref: string }).ref);
      body = `  const v = new ${T}();\n${d.fields!.map((f) => `  v.${camel(f.name)} = ${this.load(f.type, `p + ${f.offset}`)};\n`).join('')}  return v;\n`;
    } else if (k === 'option') {
      const inner = (this.resolve(t) as { option: TyJ }).option;
      const off = this.payloadOffset(t);
      const some = this.isRef(inner) ? this.load(inner, `p + ${off}`) : `new Box<${this.asType(inner)}>(${this.load(inner, `p + ${off}`)})`;
      body = `  if (load<u8>(p) == 0) return null;\n  return ${some};\n`;
    } else if (k === 'result') {
      const { ok, err } = (this.resolve(t) as { result: { ok: TyJ | null; err: TyJ | null } }).result;
      const off = this.payloadOffset(t);
      body = `  if (load<u8>(p) == 0) return ${T}.ok(${ok ? this.load(ok, `p + ${off}`) : ''});\n  return ${T}.err(${err ? this.load(err, `p + ${off}`) : ''});\n`;
    } else if (k === 'variant') {
      const d = this.named((t as { ref: string }).ref);
      const dt = `u${d.discriminantSize! * 8}`;
      body = `  switch (<i32>load<${dt}>(p)) {\n${d.cases!.map((c) => `    case ${c.index}: return ${T}.${camel(c.name)}(${c.type ? this.load(c.type, `p + ${d.payloadOffset}`) : ''});\n`).join('')}` +
        `    default: abort("invalid ${(t as { ref: string }).ref} discriminant"); return ${T}.${camel(d.cases![0]!.name)}(${d.cases![0]!.type ? this.defaultOf(d.cases![0]!.type) : ''});\n  }\n`;
    } else {
      throw new Error(`gen-as: no loader for ${JSON.stringify(t)}`);
    }
    this.helpers.set(name, `function ${name}(p: usize): ${T} {\n${body}}\n`);
    return name;
  }

  // ---- memory lowering: store_<m>(v, p) ----

  /** Statement storing expression `v` of type `t` at address expression `p`. */
  store(t: TyJ, v: string, p: string): string {
    const r = this.resolve(t);
    if (typeof r === 'string') {
      switch (r) {
        case 'bool': return `store<u8>(${p}, ${v} ? 1 : 0);`;
        case 'string': return `storeString(${v}, ${p});`;
        default: return `store<${PRIM_AS[r]}>(${p}, ${v});`;
      }
    }
    if ('list' in r && r.list === 'u8') return `storeBytes(${v}, ${p});`;
    if (this.kind(r) === 'enum') return `store<u${this.discSize(r) * 8}>(${p}, <u${this.discSize(r) * 8}>${v});`;
    return `${this.storeFn(r)}(${v}, ${p});`;
  }

  storeFn(t: TyJ): string {
    const name = `store_${this.mangle(t)}`;
    if (this.helpers.has(name)) return name;
    this.helpers.set(name, '');
    const T = this.asType(t);
    const k = this.kind(t);
    let body = '';
    if (k === 'list') {
      const el = (t as { list: TyJ }).list;
      const { size, align } = this.sizeAlign(el);
      body = `  const n = v.length;\n  const ptr = arenaAlloc(<usize>n * ${size}, ${align});\n` +
        `  for (let i = 0; i < n; i++) ${this.store(el, 'unchecked(v[i])', `ptr + <usize>i * ${size}`)}\n` +
        `  store<u32>(p, <u32>ptr);\n  store<u32>(p, <u32>n, 4);\n`;
    } else if (k === 'record') {
      const d = this.named((t as { ref: string }).ref);
      body = d.fields!.map((f) => `  ${this.store(f.type, `v.${camel(f.name)}`, `p + ${f.offset}`)}\n`).join('');
    } else if (k === 'option') {
      const inner = (this.resolve(t) as { option: TyJ }).option;
      const off = this.payloadOffset(t);
      body = `  if (v === null) { store<u8>(p, 0); return; }\n  store<u8>(p, 1);\n  ${this.store(inner, this.isRef(inner) ? 'v' : 'v.value', `p + ${off}`)}\n`;
    } else if (k === 'result') {
      const { ok, err } = (this.resolve(t) as { result: { ok: TyJ | null; err: TyJ | null } }).result;
      const off = this.payloadOffset(t);
      const payload = (n: 'ok' | 'err', ty: TyJ | null): string => (ty ? ` ${this.store(ty, this.isRef(ty) ? `v.${n}!` : `v.${n}`, `p + ${off}`)}` : '');
      body = `  if (v.isErr) {\n    store<u8>(p, 1);${payload('err', err)}\n  } else {\n    store<u8>(p, 0);${payload('ok', ok)}\n  }\n`;
    } else if (k === 'variant') {
      const d = this.named((t as { ref: string }).ref);
      const dt = `u${d.discriminantSize! * 8}`;
      body = `  store<${dt}>(p, <${dt}>v.tag);\n  switch (<i32>v.tag) {\n${d.cases!.filter((c) => c.type).map((c) => `    case ${c.index}: ${this.store(c.type!, this.isRef(c.type!) ? `v.${this.payloadField(c.name)}!` : `v.${this.payloadField(c.name)}`, `p + ${d.payloadOffset}`)} break;\n`).join('')}    default: break;\n  }\n`;
    } else {
      throw new Error(`gen-as: no storer for ${JSON.stringify(t)}`);
    }
    this.helpers.set(name, `function ${name}(v: ${T}, p: usize): void {\n${body}}\n`);
    return name;
  }

  payloadField(caseName: string): string {
    return `as${pascal(caseName)}`;
  }

  // ---- flat lifting (export parameters passed as core values) ----

  /** Expression building a value of type `t` from core locals `vars` (exactly flat(t) of them). */
  liftFlat(t: TyJ, vars: string[]): string {
    const r = this.resolve(t);
    const k = this.kind(r);
    if (typeof r === 'string') {
      const v = vars[0]!;
      switch (r) {
        case 'bool': return `${v} != 0`;
        case 'string': return `liftString(<usize>${vars[0]}, <usize>${vars[1]})`;
        default: return `<${PRIM_AS[r]}>${v}`;
      }
    }
    if (k === 'bytes') return `liftBytes(<usize>${vars[0]}, <usize>${vars[1]})`;
    if (k === 'list') { this.listFlatFn(r); return `${this.loadFn(r)}Flat(<usize>${vars[0]}, <usize>${vars[1]})`; }
    if (k === 'enum') return `<${this.asType(r)}>${vars[0]}`;
    return `${this.liftFlatFn(r)}(${vars.join(', ')})`;
  }

  /** Converts core value `v` of joined type `from` to the case's own core type `to`. */
  static unjoin(v: string, from: Core, to: Core): string {
    if (from === to) return v;
    if (from === 'i64' && to === 'i32') return `<i32>${v}`;
    if (from === 'i64' && to === 'f64') return `reinterpret<f64>(${v})`;
    if (from === 'i64' && to === 'f32') return `reinterpret<f32>(<i32>${v})`;
    if (from === 'i32' && to === 'f32') return `reinterpret<f32>(${v})`;
    throw new Error(`gen-as: cannot convert ${from} to ${to}`);
  }

  static join(v: string, from: Core, to: Core): string {
    if (from === to) return v;
    if (to === 'i64' && from === 'i32') return `<i64><u32>${v}`;
    if (to === 'i64' && from === 'f64') return `reinterpret<i64>(${v})`;
    if (to === 'i64' && from === 'f32') return `<i64><u32>reinterpret<i32>(${v})`;
    if (to === 'i32' && from === 'f32') return `reinterpret<i32>(${v})`;
    throw new Error(`gen-as: cannot convert ${from} to ${to}`);
  }

  liftFlatFn(t: TyJ): string {
    const name = `lift_flat_${this.mangle(t)}`;
    if (this.helpers.has(name)) return name;
    this.helpers.set(name, '');
    const T = this.asType(t);
    const flat = this.flat(t);
    const params = flat.map((c, i) => `a${i}: ${c}`).join(', ');
    const k = this.kind(t);
    let body = '';
    if (k === 'record') {
      const d = this.named((t as { ref: string }).ref);
      let i = 0;
      body = `  const v = new ${T}();\n`;
      for (const f of d.fields!) {
        const n = this.flat(f.type).length;
        body += `  v.${camel(f.name)} = ${this.liftFlat(f.type, flat.slice(i, i + n).map((_, j) => `a${i + j}`))};\n`;
        i += n;
      }
      body += '  return v;\n';
    } else {
      const cases = this.casesOf(t)!;
      const payload = (ty: TyJ): string => {
        const own = this.flat(ty);
        return this.liftFlat(ty, own.map((c, j) => Gen.unjoin(`a${j + 1}`, flat[j + 1]!, c)));
      };
      if (k === 'option') {
        const inner = cases[1]!.type!;
        body = `  if (a0 == 0) return null;\n  return ${this.isRef(inner) ? payload(inner) : `new Box<${this.asType(inner)}>(${payload(inner)})`};\n`;
      } else if (k === 'result') {
        body = `  if (a0 == 0) return ${T}.ok(${cases[0]!.type ? payload(cases[0]!.type) : ''});\n  return ${T}.err(${cases[1]!.type ? payload(cases[1]!.type) : ''});\n`;
      } else {
        body = `  switch (a0) {\n${cases.map((c, i) => `    case ${i}: return ${T}.${camel(c.name)}(${c.type ? payload(c.type) : ''});\n`).join('')}    default: abort("invalid discriminant"); return ${T}.${camel(cases[0]!.name)}();\n  }\n`;
      }
    }
    this.helpers.set(name, `function ${name}(${params}): ${T} {\n${body}}\n`);
    return name;
  }

  /** A (ptr, len) list lifter for flat list parameters, next to its memory loader. */
  listFlatFn(t: TyJ): void {
    const base = this.loadFn(t);
    const name = `${base}Flat`;
    if (this.helpers.has(name)) return;
    const el = (this.resolve(t) as { list: TyJ }).list;
    const { size } = this.sizeAlign(el);
    this.helpers.set(name, `function ${name}(ptr: usize, len: usize): ${this.asType(t)} {\n  const n = <i32>len;\n  const out = new ${this.asType(t)}(n);\n` +
      `  for (let i = 0; i < n; i++) unchecked(out[i] = ${this.load(el, `ptr + <usize>i * ${size}`)});\n  return out;\n}\n`);
  }

  // ---- flat lowering (import parameters) ----

  /** Statements computing core values for `v`, pushed to `out`; returns the value expressions. */
  lowerFlat(t: TyJ, v: string, out: string[], fresh: () => string): string[] {
    const r = this.resolve(t);
    const k = this.kind(r);
    if (typeof r === 'string') {
      switch (r) {
        case 'bool': return [`(${v} ? 1 : 0)`];
        case 'string': { const p = fresh(); out.push(`const ${p} = lowerString(${v});`, `const ${p}n = lastLength();`); return [`<i32>${p}`, `<i32>${p}n`]; }
        default: return PRIM_FLAT[r] === 'i32' ? [`<i32>${v}`] : PRIM_FLAT[r] === 'i64' ? [`<i64>${v}`] : [v];
      }
    }
    if (k === 'bytes') {
      const p = fresh();
      out.push(`const ${p} = ${v};`);
      return [`${p}.byteLength == 0 ? 1 : <i32>${p}.dataStart`, `${p}.byteLength`];
    }
    if (k === 'enum') return [`<i32>${v}`];
    if (k === 'list') {
      const cell = fresh();
      out.push(`const ${cell} = arenaAlloc(8, 4);`, `${this.store(r, v, cell)}`);
      return [`<i32>load<u32>(${cell})`, `<i32>load<u32>(${cell}, 4)`];
    }
    if (k === 'record') {
      const d = this.named((r as { ref: string }).ref);
      const x = fresh();
      out.push(`const ${x} = ${v};`);
      return d.fields!.flatMap((f) => this.lowerFlat(f.type, `${x}.${camel(f.name)}`, out, fresh));
    }
    if (k === 'option') {
      const inner = (r as { option: TyJ }).option;
      const flat = this.flat(r);
      const x = fresh();
      const locals = flat.map((_, i) => `${x}_${i}`);
      out.push(`const ${x} = ${v};`, ...flat.map((c, i) => `let ${locals[i]}: ${c} = 0;`));
      const inner_: string[] = [];
      const vals = this.lowerFlat(inner, this.isRef(inner) ? `changetype<${this.asType(inner)}>(${x})` : `changetype<Box<${this.asType(inner)}>>(${x}).value`, inner_, fresh);
      const own = this.flat(inner);
      out.push(`if (${x} !== null) {`, ...inner_.map((s) => `  ${s}`), `  ${locals[0]} = 1;`, ...vals.map((e, i) => `  ${locals[i + 1]} = ${Gen.join(e, own[i]!, flat[i + 1]!)};`), '}');
      return locals;
    }
    throw new Error(`gen-as: flat lowering of ${k} is not supported`);
  }

  // ---- output ----

  typesSection(): string {
    let out = '';
    for (const [name, d] of Object.entries(this.L.types)) {
      const witDoc = this.pkg.types.get(name);
      const T = pascal(name);
      out += doc(witDoc?.doc ?? '');
      if (d.kind === 'alias') {
        out += `export type ${T} = ${this.asType(d.type!)};\n\n`;
      } else if (d.kind === 'record') {
        const fdocs = witDoc && witDoc.kind === 'record' ? witDoc.fields : [];
        out += `export class ${T} {\n`;
        for (const f of d.fields!) {
          out += doc(fdocs.find((x) => x.name === f.name)?.doc ?? '', '  ');
          const ty = this.asType(f.type);
          out += `  ${camel(f.name)}: ${ty} = ${this.defaultOf(f.type)};\n`;
        }
        out += '}\n\n';
      } else if (d.kind === 'enum') {
        const cdocs = witDoc && witDoc.kind === 'enum' ? witDoc.cases : [];
        out += `export enum ${T} {\n${d.cases!.map((c) => `${doc(cdocs.find((x) => x.name === c.name)?.doc ?? '', '  ')}  ${pascal(c.name)} = ${c.index},\n`).join('')}}\n\n`;
      } else {
        const cdocs = witDoc && witDoc.kind === 'variant' ? witDoc.cases : [];
        out += `export enum ${T}Tag {\n${d.cases!.map((c) => `  ${pascal(c.name)} = ${c.index},\n`).join('')}}\n\n`;
        out += doc(witDoc?.doc ?? '');
        out += `export class ${T} {\n  tag: ${T}Tag = <${T}Tag>0;\n`;
        for (const c of d.cases!) {
          if (!c.type) continue;
          const ref = this.isRef(c.type);
          out += `  /** Payload of ${c.name}. */\n  ${this.payloadField(c.name)}: ${this.asType(c.type)}${ref ? ' | null = null' : ` = ${this.defaultOf(c.type)}`};\n`;
        }
        for (const c of d.cases!) {
          out += doc(cdocs.find((x) => x.name === c.name)?.doc ?? '', '  ');
          out += c.type
            ? `  static ${camel(c.name)}(v: ${this.asType(c.type)}): ${T} { const r = new ${T}(); r.tag = ${T}Tag.${pascal(c.name)}; r.${this.payloadField(c.name)} = v; return r; }\n`
            : `  static ${camel(c.name)}(): ${T} { const r = new ${T}(); r.tag = ${T}Tag.${pascal(c.name)}; return r; }\n`;
        }
        out += '}\n\n';
      }
    }
    return out;
  }

  importsSection(): string {
    let out = '';
    for (const imp of this.L.imports) {
      const module = imp.coreModules.find((m) => !m.startsWith('cm32p2')) ?? imp.coreModules[0]!;
      const iface = this.pkg.interfaces.find((i) => i.name === imp.interface);
      for (const f of imp.funcs) {
        const raw = `__${snake(imp.interface)}_${snake(f.name)}`;
        const params = f.core.params.map((c, i) => `a${i}: ${c}`).join(', ');
        const rt = f.core.results[0] ?? 'void';
        out += `// @ts-ignore: decorator\n@external("${module}", "${f.name}")\ndeclare function ${raw}(${params}): ${rt};\n`;
        const wrapper = `${camel(imp.interface)}${pascal(f.name)}`;
        const ret = f.result ? this.asType(f.result.type) : 'void';
        out += doc(iface?.funcs.find((x) => x.name === f.name)?.doc ?? '');
        out += `export function ${wrapper}(${f.params.map((p) => `${camel(p.name)}: ${this.asType(p.type)}`).join(', ')}): ${ret} {\n`;
        const stmts: string[] = [];
        let n = 0;
        const fresh = (): string => `t${n++}`;
        if (f.core.paramsInMemory) throw new Error(`gen-as: import ${f.name} passes params in memory (not supported)`);
        const args = f.params.flatMap((p) => this.lowerFlat(p.type, camel(p.name), stmts, fresh));
        for (const s of stmts) out += `  ${s}\n`;
        if (f.core.resultInMemory) {
          const r = f.result!;
          out += `  const ret = arenaAlloc(${r.size}, ${r.align});\n  ${raw}(${[...args, '<i32>ret'].join(', ')});\n  return ${this.load(r.type, 'ret')};\n`;
        } else if (f.result) {
          out += `  const r = ${raw}(${args.join(', ')});\n  return ${this.liftFlat(f.result.type, ['r'])};\n`;
        } else {
          out += `  ${raw}(${args.join(', ')});\n`;
        }
        out += '}\n\n';
      }
    }
    return out;
  }

  guestSection(): string {
    const world = this.pkg.worlds.find((w) => w.name === this.L.world);
    let cls = '/**\n * What the exports call: the SDK subclasses it and registers one instance with setGuest.\n * Each method defaults to the WIT default (continue / none / nothing).\n */\nexport class Guest {\n';
    let fns = '';
    const exportNames: string[] = [];
    for (const f of this.L.exports) {
      const m = camel(f.name);
      const ret = f.result ? this.asType(f.result.type) : 'void';
      const params = f.params.map((p) => `${camel(p.name)}: ${this.asType(p.type)}`).join(', ');
      const def = !f.result ? '' : this.kind(f.result.type) === 'option' ? ' return null; ' : ` return ${this.defaultOf(f.result.type)}; `;
      cls += doc(world?.exports.find((x) => x.name === f.name)?.doc ?? '', '  ');
      cls += `  ${m}(${params}): ${ret} {${def}}\n`;

      const ex = `${EXPORT_PREFIX}${snake(f.name)}`;
      exportNames.push(ex);
      const coreParams = f.core.params.map((c, i) => `a${i}: ${c}`).join(', ');
      const coreRet = f.core.results[0] ?? 'void';
      fns += `export function ${ex}(${coreParams}): ${coreRet} {\n`;
      const args: string[] = [];
      if (f.core.paramsInMemory) {
        for (const p of f.params) {
          const v = camel(p.name);
          fns += `  const ${v} = ${this.load(p.type, `<usize>a0 + ${p.memoryOffset}`)};\n`;
          args.push(v);
        }
      } else {
        let i = 0;
        for (const p of f.params) {
          const n = this.flat(p.type).length;
          if (this.kind(p.type) === 'list') this.listFlatFn(p.type);
          const v = camel(p.name);
          fns += `  const ${v} = ${this.liftFlat(p.type, Array.from({ length: n }, (_, j) => `a${i + j}`))};\n`;
          args.push(v);
          i += n;
        }
      }
      const call = `getGuest().${m}(${args.join(', ')})`;
      if (!f.result) {
        fns += `  ${call};\n  arenaReset();\n}\n\n`;
        continue;
      }
      if (!f.core.resultInMemory) throw new Error(`gen-as: export ${f.name} returns flat (not supported)`);
      fns += `  const result = ${call};\n  const ret = arenaAlloc(${f.result.size}, ${f.result.align});\n  ${this.store(f.result.type, 'result', 'ret')}\n  return <i32>ret;\n}\n\n`;
      const post = `${POST_PREFIX}${snake(f.name)}`;
      exportNames.push(post);
      fns += `export function ${post}(ret: i32): void {\n  arenaReset();\n}\n\n`;
    }
    cls += '}\n\n';
    const reg = 'let guest: Guest | null = null;\n\n/** Installs the object every export calls; the SDK\'s registerPlugin does this. */\nexport function setGuest(g: Guest): void {\n  guest = g;\n}\n\n' +
      'function getGuest(): Guest {\n  const g = guest;\n  if (g === null) { abort("no plugin registered: call registerPlugin() at the top level of the entry file"); unreachable(); }\n  return g!;\n}\n\n';
    this.exportNames = exportNames;
    return cls + reg + fns;
  }

  exportNames: string[] = [];
}

const HEADER = (what: string): string =>
  `// GENERATED by sdk-assemblyscript/gen/gen-as.ts from wit/weir.wit — do not edit.\n// Regenerate: node_modules/.bin/node sdk-assemblyscript/gen/gen-as.ts\n// ${what}\n`;

/** Every generated file, by name (relative to assembly/generated/), from the WIT source. */
export function generate(witSource: string): Record<string, string> {
  const L = JSON.parse(generateAbi(witSource)['layout.json']!) as LayoutJ;
  const pkg = parseWit(witSource);
  const g = new Gen(L, pkg);
  const types = g.typesSection();
  const imports = g.importsSection();
  const guest = g.guestSection();
  const helpers = [...g.helpers.values()].join('\n');
  const results = [...g.resultClasses.values()].join('\n');
  const abi = HEADER(`Canonical-ABI bindings of ${L.package} world \`${L.world}\` for AssemblyScript guests.`) +
    `import { arenaAlloc, arenaReset, lastLength, liftBytes, liftString, lowerString, storeBytes, storeString } from "../memory";\n\n` +
    '/** A present value of a primitive option<T> (an absent one is null). */\nexport class Box<T> {\n  constructor(public value: T) {}\n}\n\n' +
    `// ---- types ----\n\n${types}${results}\n// ---- host imports ----\n\n${imports}// ---- exports ----\n\n${guest}// ---- lifting and lowering ----\n\n${helpers}`;
  const exportsTs = HEADER(`The core exports of the plugin world; a plugin's entry file re-exports them.`) +
    `export { cabi_realloc } from "../memory";\nexport {\n${g.exportNames.map((n) => `  ${n},\n`).join('')}} from "./abi";\n`;
  return { 'abi.ts': abi, 'exports.ts': exportsTs };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = generate(readFileSync(WIT_PATH, 'utf8'));
  mkdirSync(OUT_DIR, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(OUT_DIR + name, text);
  console.log(`wrote ${Object.keys(files).map((n) => `sdk-assemblyscript/assembly/generated/${n}`).join(', ')}`);
}
