/**
 * Generates `sdk-rust-guest/src/abi.rs` (the Rust guest glue) from `wit/weir.wit` (names and
 * docs) and `plugin-abi/generated/layout.json` (canonical-ABI sizes, offsets, flattening and
 * core names), so the guest and the host codec can never disagree on a layout:
 *   node_modules/.bin/node sdk-rust-guest/gen/gen-rust.ts
 * test/sdk-rust/generated.test.ts fails when the committed abi.rs is stale.
 *
 * Conventions of the emitted code:
 *  - WIT names map mechanically: `on-request-headers` → `on_request_headers`, types and cases
 *    → PascalCase. A variant case whose payload is a record becomes a struct-like variant
 *    with the record's fields (`Decision::Respond { status, headers, body }`).
 *  - Lifting takes ownership of what the other side allocated with `cabi_realloc` (strings,
 *    byte lists); lowering borrows and keeps buffers alive in a `Keep` until the call (or,
 *    for export results, the post-return) is over.
 *  - Only the generated export macro sits in the plugin's crate, so the exports are defined
 *    in the final cdylib whatever the linker does with unused rlib objects.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseWit, type Package } from '../../plugin-abi/src/gen/wit.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const WIT_PATH = `${ROOT}wit/weir.wit`;
export const LAYOUT_PATH = `${ROOT}plugin-abi/generated/layout.json`;
export const OUT_PATH = `${ROOT}sdk-rust-guest/src/abi.rs`;

// ---- layout.json shapes ----

type TypeExpr = string | { ref: string } | { list: TypeExpr } | { option: TypeExpr } | { result: { ok: TypeExpr | null; err: TypeExpr | null } };

interface FieldL { name: string; type: TypeExpr; offset: number }
interface CaseL { name: string; index: number; type: TypeExpr | null }
interface TypeL {
  kind: 'record' | 'variant' | 'enum' | 'alias';
  size: number;
  align: number;
  flat: string[];
  fields?: FieldL[];
  cases?: CaseL[];
  payloadOffset?: number;
  discriminantSize?: number;
  type?: TypeExpr;
}
interface ParamL { name: string; type: TypeExpr; flat: string[]; memoryOffset: number }
interface CoreL { params: string[]; results: string[]; paramsInMemory: boolean; paramsTuple: { size: number; align: number } | null; resultInMemory: boolean }
interface FuncL { name: string; params: ParamL[]; result: { type: TypeExpr; size: number; align: number; flat: string[] } | null; core: CoreL }
interface ExportL extends FuncL { coreNames: { fn: string[]; post: string[] } }
interface Layout {
  package: string;
  world: string;
  types: Record<string, TypeL>;
  imports: { interface: string; coreModules: string[]; funcs: FuncL[] }[];
  exports: ExportL[];
}

// ---- names ----

const KEYWORDS = new Set(['as', 'break', 'const', 'continue', 'crate', 'else', 'enum', 'extern', 'false', 'fn', 'for', 'if', 'impl', 'in', 'let', 'loop', 'match', 'mod', 'move', 'mut', 'pub', 'ref', 'return', 'self', 'static', 'struct', 'super', 'trait', 'true', 'type', 'unsafe', 'use', 'where', 'while', 'async', 'await', 'dyn', 'abstract', 'become', 'box', 'do', 'final', 'macro', 'override', 'priv', 'typeof', 'unsized', 'virtual', 'yield', 'try']);

export const snake = (s: string): string => {
  const n = s.replace(/-/g, '_');
  return KEYWORDS.has(n) ? `r#${n}` : n;
};
export const pascal = (s: string): string => s.split('-').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('');

const PRIM_RUST: Record<string, string> = { bool: 'bool', u8: 'u8', u16: 'u16', u32: 'u32', u64: 'u64', s8: 'i8', s16: 'i16', s32: 'i32', s64: 'i64', f32: 'f32', f64: 'f64', char: 'char' };
const PRIM_SIZE: Record<string, number> = { bool: 1, u8: 1, s8: 1, u16: 2, s16: 2, u32: 4, s32: 4, f32: 4, char: 4, u64: 8, s64: 8, f64: 8 };
const CORE_RUST: Record<string, string> = { i32: 'i32', i64: 'i64', f32: 'f32', f64: 'f64' };

// ---- generator ----

class Gen {
  readonly L: Layout;
  readonly pkg: Package;
  private n = 0;

  constructor(L: Layout, pkg: Package) {
    this.L = L;
    this.pkg = pkg;
  }

  fresh(p: string): string { return `${p}${this.n++}`; }

  def(name: string): TypeL {
    const t = this.L.types[name];
    if (!t) throw new Error(`layout.json: unknown type ${name}`);
    return t;
  }

  /** Follows aliases to the type the ABI sees. */
  resolve(t: TypeExpr): TypeExpr {
    while (typeof t === 'object' && 'ref' in t && this.def(t.ref).kind === 'alias') t = this.def(t.ref).type!;
    // Fail loudly on WIT shapes this generator does not know (tuple, flags, resources…).
    const known = typeof t === 'string' ? t === 'string' || t in PRIM_SIZE : 'ref' in t || 'list' in t || 'option' in t || 'result' in t;
    if (!known) throw new Error(`gen-rust: unsupported type ${JSON.stringify(t)}; extend sdk-rust-guest/gen/gen-rust.ts`);
    return t;
  }

  size(t: TypeExpr | null): number {
    if (t === null) return 0;
    t = this.resolve(t);
    if (typeof t === 'string') return t === 'string' ? 8 : PRIM_SIZE[t]!;
    if ('ref' in t) return this.def(t.ref).size;
    if ('list' in t) return 8;
    if ('option' in t) return alignTo(this.optOffset(t.option) + this.size(t.option), Math.max(1, this.align(t.option)));
    const pa = Math.max(1, this.align(t.result.ok), this.align(t.result.err));
    return alignTo(alignTo(1, pa) + Math.max(this.size(t.result.ok), this.size(t.result.err)), pa);
  }

  align(t: TypeExpr | null): number {
    if (t === null) return 1;
    t = this.resolve(t);
    if (typeof t === 'string') return t === 'string' ? 4 : PRIM_SIZE[t]!;
    if ('ref' in t) return this.def(t.ref).align;
    if ('list' in t) return 4;
    if ('option' in t) return Math.max(1, this.align(t.option));
    return Math.max(1, this.align(t.result.ok), this.align(t.result.err));
  }

  optOffset(t: TypeExpr): number { return alignTo(1, this.align(t)); }
  resOffset(ok: TypeExpr | null, err: TypeExpr | null): number { return alignTo(1, Math.max(1, this.align(ok), this.align(err))); }

  /** Owned Rust type. */
  rust(t: TypeExpr | null): string {
    if (t === null) return '()';
    if (typeof t !== 'object' || !('ref' in t)) this.resolve(t);
    if (typeof t === 'string') return t === 'string' ? 'String' : PRIM_RUST[t]!;
    if ('ref' in t) return pascal(t.ref);
    if ('list' in t) return `Vec<${this.rust(t.list)}>`;
    if ('option' in t) return `Option<${this.rust(t.option)}>`;
    return `Result<${this.rust(t.result.ok)}, ${this.rust(t.result.err)}>`;
  }

  /** Rust type of an import parameter: borrowed where the value is only read. */
  rustParam(t: TypeExpr): string {
    if (t === 'string') return '&str';
    if (typeof t === 'object' && 'list' in t) {
      if (t.list === 'u8') return '&[u8]';
      if (t.list === 'string') return '&[&str]';
      return `&[${this.rust(t.list)}]`;
    }
    if (typeof t === 'object' && 'ref' in t) {
      const d = this.def(t.ref);
      if (d.kind === 'record' || (d.kind === 'variant' && !this.isPod(t))) return `&${pascal(t.ref)}`;
    }
    return this.rust(t);
  }

  /** Whether a value has no heap data (derives Copy). */
  isPod(t: TypeExpr | null): boolean {
    if (t === null) return true;
    this.resolve(t);
    if (typeof t === 'string') return t !== 'string';
    if ('list' in t) return false;
    if ('option' in t) return this.isPod(t.option);
    if ('result' in t) return this.isPod(t.result.ok) && this.isPod(t.result.err);
    const d = this.def(t.ref);
    if (d.kind === 'alias') return this.isPod(d.type!);
    if (d.kind === 'enum') return true;
    if (d.kind === 'record') return d.fields!.every((f) => this.isPod(f.type));
    return d.cases!.every((c) => this.isPod(c.type));
  }

  hasFloat(t: TypeExpr | null): boolean {
    if (t === null) return false;
    this.resolve(t);
    if (typeof t === 'string') return t === 'f32' || t === 'f64';
    if ('list' in t) return this.hasFloat(t.list);
    if ('option' in t) return this.hasFloat(t.option);
    if ('result' in t) return this.hasFloat(t.result.ok) || this.hasFloat(t.result.err);
    const d = this.def(t.ref);
    if (d.kind === 'alias') return this.hasFloat(d.type!);
    if (d.kind === 'enum') return false;
    if (d.kind === 'record') return d.fields!.some((f) => this.hasFloat(f.type));
    return d.cases!.some((c) => this.hasFloat(c.type));
  }

  /** The record a variant case carries, if any (such cases become struct-like variants). */
  caseRecord(c: CaseL): TypeL | undefined {
    if (c.type === null || typeof c.type !== 'object' || !('ref' in c.type)) return undefined;
    const d = this.def(c.type.ref);
    return d.kind === 'record' ? d : undefined;
  }

  // ---- lifting (memory → Rust value); `p` is a `*const u8` expression ----

  lift(t: TypeExpr, p: string): string {
    t = this.resolve(t);
    if (typeof t === 'string') {
      if (t === 'string') return `lift_string(rd::<i32>(${p}), rd::<i32>(${p}.add(4)))`;
      if (t === 'bool') return `(rd::<u8>(${p}) != 0)`;
      return `rd::<${PRIM_RUST[t]}>(${p})`;
    }
    if ('ref' in t) return `lift_${snake(t.ref).replace(/^r#/, '')}(${p})`;
    if ('list' in t) {
      if (t.list === 'u8') return `lift_bytes(rd::<i32>(${p}), rd::<i32>(${p}.add(4)))`;
      const e = this.fresh('e');
      return `lift_list(rd::<i32>(${p}), rd::<i32>(${p}.add(4)), ${this.size(t.list)}, ${this.align(t.list)}, |${e}| ${this.lift(t.list, e)})`;
    }
    if ('option' in t) return `match rd::<u8>(${p}) { 0 => None, 1 => Some(${this.lift(t.option, `${p}.add(${this.optOffset(t.option)})`)}), _ => trap() }`;
    const off = this.resOffset(t.result.ok, t.result.err);
    const ok = t.result.ok === null ? '()' : this.lift(t.result.ok, `${p}.add(${off})`);
    const err = t.result.err === null ? '()' : this.lift(t.result.err, `${p}.add(${off})`);
    return `match rd::<u8>(${p}) { 0 => Ok(${ok}), 1 => Err(${err}), _ => trap() }`;
  }

  // ---- lowering (Rust value → memory); `v` is a reference expression, `p` a `*mut u8` ----

  lower(t: TypeExpr, v: string, p: string, ind: string): string {
    t = this.resolve(t);
    if (typeof t === 'string') {
      if (t === 'string') return `${ind}wr_pair(${p}, (${v}).as_ptr(), (${v}).len());\n`;
      if (t === 'bool') return `${ind}wr::<u8>(${p}, *${v} as u8);\n`;
      return `${ind}wr::<${PRIM_RUST[t]}>(${p}, *${v});\n`;
    }
    if ('ref' in t) return `${ind}lower_${snake(t.ref).replace(/^r#/, '')}(${v}, ${p}, keep);\n`;
    if ('list' in t) {
      if (t.list === 'u8') return `${ind}wr_pair(${p}, (${v}).as_ptr(), (${v}).len());\n`;
      const b = this.fresh('b');
      const i = this.fresh('i');
      const e = this.fresh('e');
      const sz = this.size(t.list);
      return `${ind}let ${b} = keep.alloc((${v}).len() * ${sz});\n`
        + `${ind}for (${i}, ${e}) in (${v}).iter().enumerate() {\n${this.lower(t.list, e, `${b}.add(${i} * ${sz})`, ind + '    ')}${ind}}\n`
        + `${ind}wr_pair(${p}, ${b} as *const u8, (${v}).len());\n`;
    }
    if ('option' in t) {
      const x = this.fresh('x');
      return `${ind}match ${v} {\n${ind}    None => wr::<u8>(${p}, 0),\n${ind}    Some(${x}) => {\n${ind}        wr::<u8>(${p}, 1);\n`
        + this.lower(t.option, x, `${p}.add(${this.optOffset(t.option)})`, ind + '        ')
        + `${ind}    }\n${ind}}\n`;
    }
    const off = this.resOffset(t.result.ok, t.result.err);
    const x = this.fresh('x');
    const arm = (disc: number, ty: TypeExpr | null, name: string): string => {
      const bind = ty === null ? '_' : x;
      return `${ind}    ${name}(${bind}) => {\n${ind}        wr::<u8>(${p}, ${disc});\n${ty === null ? '' : this.lower(ty, x, `${p}.add(${off})`, ind + '        ')}${ind}    }\n`;
    };
    return `${ind}match ${v} {\n${arm(0, t.result.ok, 'Ok')}${arm(1, t.result.err, 'Err')}${ind}}\n`;
  }

  // ---- flat values (core parameters) ----

  /** Core values a type flattens to (only shapes that need no join of variant cases). */
  flat(t: TypeExpr): string[] {
    t = this.resolve(t);
    if (typeof t === 'string') {
      if (t === 'string') return ['i32', 'i32'];
      if (t === 'u64' || t === 's64') return ['i64'];
      if (t === 'f64' || t === 'f32') return [t];
      return ['i32'];
    }
    if ('list' in t) return ['i32', 'i32'];
    if ('option' in t) return ['i32', ...this.flat(t.option)];
    if ('result' in t) throw new Error('gen-rust: result in a flat position is not supported');
    const d = this.def(t.ref);
    if (d.kind === 'record') return d.fields!.flatMap((f) => this.flat(f.type));
    if (d.kind === 'enum') return ['i32'];
    throw new Error(`gen-rust: variant ${t.ref} in a flat position is not supported`);
  }

  /** Lifts a value from core values (consumed from `vars`). */
  liftFlat(t: TypeExpr, vars: string[]): string {
    t = this.resolve(t);
    if (typeof t === 'string') {
      const a = vars.shift()!;
      if (t === 'string') return `lift_string(${a}, ${vars.shift()!})`;
      if (t === 'bool') return `(${a} != 0)`;
      return `(${a} as ${PRIM_RUST[t]})`;
    }
    if ('list' in t) {
      const a = vars.shift()!;
      const b = vars.shift()!;
      if (t.list === 'u8') return `lift_bytes(${a}, ${b})`;
      const e = this.fresh('e');
      return `lift_list(${a}, ${b}, ${this.size(t.list)}, ${this.align(t.list)}, |${e}| ${this.lift(t.list, e)})`;
    }
    if ('option' in t) {
      const d = vars.shift()!;
      return `match ${d} { 0 => None, 1 => Some(${this.liftFlat(t.option, vars)}), _ => trap() }`;
    }
    if ('result' in t) throw new Error('gen-rust: result in a flat position is not supported');
    const d = this.def(t.ref);
    if (d.kind === 'record') return `${pascal(t.ref)} { ${d.fields!.map((f) => `${snake(f.name)}: ${this.liftFlat(f.type, vars)}`).join(', ')} }`;
    if (d.kind === 'enum') return `${pascal(t.ref)}::from_index(${vars.shift()!} as u32)`;
    throw new Error(`gen-rust: variant ${t.ref} in a flat position is not supported`);
  }

  /** Lowers a place expression `v` to core values; statements needed first go to `pre`. */
  lowerFlat(t: TypeExpr, v: string, pre: string[], ind: string): string[] {
    t = this.resolve(t);
    if (typeof t === 'string') {
      if (t === 'string') return [`(${v}).as_ptr() as usize as i32`, `(${v}).len() as i32`];
      const core = this.flat(t)[0]!;
      return [`(${v}) as ${CORE_RUST[core]}`];
    }
    if ('list' in t) {
      if (t.list === 'u8') return [`(${v}).as_ptr() as usize as i32`, `(${v}).len() as i32`];
      const b = this.fresh('b');
      const i = this.fresh('i');
      const e = this.fresh('e');
      const sz = this.size(t.list);
      pre.push(`${ind}let ${b} = keep.alloc((${v}).len() * ${sz});\n`
        + `${ind}for (${i}, ${e}) in (${v}).iter().enumerate() {\n${this.lower(t.list, e, `${b}.add(${i} * ${sz})`, ind + '    ')}${ind}}\n`);
      return [`${b} as usize as i32`, `(${v}).len() as i32`];
    }
    if ('option' in t) {
      const x = this.fresh('x');
      const inner: string[] = [];
      const some = this.lowerFlat(t.option, `(*${x})`, inner, ind + '        ');
      if (inner.length) throw new Error('gen-rust: option of a list in a flat position is not supported');
      const types = this.flat(t.option).map((c) => CORE_RUST[c]!);
      const names = ['i32', ...types].map(() => this.fresh('o'));
      const zero = types.map((c) => (c.startsWith('f') ? `0.0${c}` : `0${c}`));
      pre.push(`${ind}let (${names.join(', ')}) = match &(${v}) {\n${ind}    None => (0i32, ${zero.join(', ')}),\n${ind}    Some(${x}) => (1i32, ${some.join(', ')}),\n${ind}};\n`);
      return names;
    }
    if ('result' in t) throw new Error('gen-rust: result in a flat position is not supported');
    const d = this.def(t.ref);
    if (d.kind === 'record') return d.fields!.flatMap((f) => this.lowerFlat(f.type, `${v}.${snake(f.name)}`, pre, ind));
    if (d.kind === 'enum') return [`(${v}) as i32`];
    throw new Error(`gen-rust: variant ${t.ref} in a flat position is not supported`);
  }

  // ---- docs ----

  doc(text: string | undefined, ind: string): string {
    if (!text) return '';
    return text.split('\n').map((l) => `${ind}///${l ? ' ' + l : ''}\n`).join('');
  }

  typeDoc(name: string): { doc: string; members: Map<string, string> } {
    const d = this.pkg.types.get(name);
    const members = new Map<string, string>();
    if (d && (d.kind === 'record')) for (const f of d.fields) members.set(f.name, f.doc);
    if (d && (d.kind === 'variant' || d.kind === 'enum')) for (const c of d.cases) members.set(c.name, c.doc);
    return { doc: d?.doc ?? '', members };
  }

  funcDoc(name: string, exported: boolean): string {
    if (exported) return this.pkg.worlds.flatMap((w) => w.exports).find((f) => f.name === name)?.doc ?? '';
    return this.pkg.interfaces.flatMap((i) => i.funcs).find((f) => f.name === name)?.doc ?? '';
  }

  // ---- items ----

  typeItems(): string {
    let out = '';
    for (const [name, d] of Object.entries(this.L.types)) {
      const R = pascal(name);
      const f = snake(name).replace(/^r#/, '');
      const { doc, members } = this.typeDoc(name);
      const ref = { ref: name };
      out += this.doc(doc, '    ');
      if (d.kind === 'alias') {
        out += `    pub type ${R} = ${this.rust(d.type!)};\n\n`;
        continue;
      }
      const derive = d.kind === 'enum'
        ? 'Debug, Clone, Copy, PartialEq, Eq, Hash'
        : `Debug, Clone${this.isPod(ref) ? ', Copy' : ''}, PartialEq${this.hasFloat(ref) ? '' : ', Eq'}`;
      out += `    #[derive(${derive})]\n`;
      if (d.kind === 'record') {
        out += `    pub struct ${R} {\n`;
        for (const fl of d.fields!) out += `${this.doc(members.get(fl.name), '        ')}        pub ${snake(fl.name)}: ${this.rust(fl.type)},\n`;
        out += '    }\n\n';
        out += `    pub(crate) unsafe fn lift_${f}(p: *const u8) -> ${R} {\n        ${R} {\n`;
        for (const fl of d.fields!) out += `            ${snake(fl.name)}: ${this.lift(fl.type, `p.add(${fl.offset})`)},\n`;
        out += '        }\n    }\n\n';
        out += `    pub(crate) unsafe fn lower_${f}(v: &${R}, p: *mut u8, keep: &mut Keep) {\n        let _ = &keep;\n`;
        for (const fl of d.fields!) out += this.lower(fl.type, `&v.${snake(fl.name)}`, `p.add(${fl.offset})`, '        ');
        out += '    }\n\n';
      } else if (d.kind === 'enum') {
        out += `    #[repr(u8)]\n    pub enum ${R} {\n`;
        for (const c of d.cases!) out += `${this.doc(members.get(c.name), '        ')}        ${pascal(c.name)} = ${c.index},\n`;
        out += '    }\n\n';
        out += `    impl ${R} {\n        /// Every case, in WIT order.\n        pub const ALL: [${R}; ${d.cases!.length}] = [${d.cases!.map((c) => `${R}::${pascal(c.name)}`).join(', ')}];\n\n`;
        out += `        pub(crate) fn from_index(i: u32) -> ${R} {\n            match i {\n`;
        for (const c of d.cases!) out += `                ${c.index} => ${R}::${pascal(c.name)},\n`;
        out += '                _ => trap(),\n            }\n        }\n    }\n\n';
        out += `    pub(crate) unsafe fn lift_${f}(p: *const u8) -> ${R} {\n        ${R}::from_index(rd::<u8>(p) as u32)\n    }\n\n`;
        out += `    pub(crate) unsafe fn lower_${f}(v: &${R}, p: *mut u8, _keep: &mut Keep) {\n        wr::<u8>(p, *v as u8);\n    }\n\n`;
      } else {
        const po = d.payloadOffset!;
        if (d.discriminantSize !== 1) throw new Error(`gen-rust: ${name}: only 1-byte discriminants are supported`);
        out += `    pub enum ${R} {\n`;
        for (const c of d.cases!) {
          out += this.doc(members.get(c.name), '        ');
          const rec = this.caseRecord(c);
          if (rec) {
            const rdoc = this.typeDoc((c.type as { ref: string }).ref).members;
            out += `        ${pascal(c.name)} {\n`;
            for (const fl of rec.fields!) out += `${this.doc(rdoc.get(fl.name), '            ')}            ${snake(fl.name)}: ${this.rust(fl.type)},\n`;
            out += '        },\n';
          } else if (c.type === null) out += `        ${pascal(c.name)},\n`;
          else out += `        ${pascal(c.name)}(${this.rust(c.type)}),\n`;
        }
        out += '    }\n\n';
        out += `    pub(crate) unsafe fn lift_${f}(p: *const u8) -> ${R} {\n        match rd::<u8>(p) {\n`;
        for (const c of d.cases!) {
          const rec = this.caseRecord(c);
          if (rec) {
            out += `            ${c.index} => ${R}::${pascal(c.name)} {\n`;
            for (const fl of rec.fields!) out += `                ${snake(fl.name)}: ${this.lift(fl.type, `p.add(${po + fl.offset})`)},\n`;
            out += '            },\n';
          } else if (c.type === null) out += `            ${c.index} => ${R}::${pascal(c.name)},\n`;
          else out += `            ${c.index} => ${R}::${pascal(c.name)}(${this.lift(c.type, `p.add(${po})`)}),\n`;
        }
        out += '            _ => trap(),\n        }\n    }\n\n';
        out += `    pub(crate) unsafe fn lower_${f}(v: &${R}, p: *mut u8, keep: &mut Keep) {\n        let _ = &keep;\n        match v {\n`;
        for (const c of d.cases!) {
          const rec = this.caseRecord(c);
          if (rec) {
            const vars = rec.fields!.map(() => this.fresh('f'));
            out += `            ${R}::${pascal(c.name)} { ${rec.fields!.map((fl, i) => `${snake(fl.name)}: ${vars[i]}`).join(', ')} } => {\n                wr::<u8>(p, ${c.index});\n`;
            rec.fields!.forEach((fl, i) => { out += this.lower(fl.type, vars[i]!, `p.add(${po + fl.offset})`, '                '); });
            out += '            }\n';
          } else if (c.type === null) {
            out += `            ${R}::${pascal(c.name)} => wr::<u8>(p, ${c.index}),\n`;
          } else {
            const x = this.fresh('x');
            out += `            ${R}::${pascal(c.name)}(${x}) => {\n                wr::<u8>(p, ${c.index});\n${this.lower(c.type, x, `p.add(${po})`, '                ')}            }\n`;
          }
        }
        out += '        }\n    }\n\n';
      }
    }
    return out;
  }

  /** One `pub mod` per imported interface (`host`, `crypto`), its raw imports beside their safe wrappers. */
  importModules(): string {
    if (!this.L.imports.length) throw new Error('gen-rust: expected an imported interface');
    return this.L.imports.map((imp) => `/// Functions the host offers (\`${this.L.package.replace(/@.*/, '')}/${imp.interface}\`). Each raw import sits above its safe wrapper.
pub mod ${snake(imp.interface).replace(/^r#/, '')} {
    use super::*;

${this.importItems(imp).trimEnd()}
}
`).join('\n');
  }

  importItems(imp: Layout['imports'][number]): string {
    const module = imp.coreModules.find((m) => !m.startsWith('cm32p2|'))!;
    let out = '';
    for (const fn of imp.funcs) {
      const raw = `raw_${snake(fn.name).replace(/^r#/, '')}`;
      const coreParams = [...fn.core.params];
      if (fn.core.paramsInMemory) throw new Error(`gen-rust: ${fn.name}: parameters in memory are not supported for imports`);
      // With the result in memory, the last core parameter is the return-area pointer.
      const sig = coreParams.map((c, i) => `a${i}: ${CORE_RUST[c]}`).join(', ');
      const ret = fn.core.results.length ? ` -> ${CORE_RUST[fn.core.results[0]!]}` : '';
      out += `    #[cfg(target_arch = "wasm32")]\n    #[link(wasm_import_module = "${module}")]\n    extern "C" {\n        #[link_name = "${fn.name}"]\n        fn ${raw}(${sig})${ret};\n    }\n`;
      out += `    #[cfg(not(target_arch = "wasm32"))]\n    unsafe fn ${raw}(${coreParams.map((c) => `_: ${CORE_RUST[c]}`).join(', ')})${ret} {\n        outside_weir("${fn.name}")\n    }\n`;
      // Safe wrapper.
      const params = fn.params.map((p) => `${snake(p.name)}: ${this.rustParam(p.type)}`).join(', ');
      const rty = fn.result ? this.rust(fn.result.type) : '()';
      out += this.doc(this.funcDoc(fn.name, false), '    ');
      out += `    pub fn ${snake(fn.name)}(${params})${fn.result ? ` -> ${rty}` : ''} {\n        unsafe {\n`;
      const pre: string[] = [];
      const args: string[] = [];
      for (const p of fn.params) args.push(...this.lowerFlat(p.type, snake(p.name), pre, '            '));
      const needsKeep = pre.some((s) => s.includes('keep.'));
      if (needsKeep) out += '            let mut keep_ = Keep::new();\n            let keep = &mut keep_;\n';
      out += pre.join('');
      if (args.length + (fn.core.resultInMemory ? 1 : 0) !== fn.core.params.length) throw new Error(`gen-rust: ${fn.name}: flattened ${args.length} values, layout says ${fn.core.params.length}`);
      if (fn.core.resultInMemory) {
        const words = Math.ceil(fn.result!.size / 8);
        out += `            let mut ret = [0u64; ${words}];\n            let rp = ret.as_mut_ptr() as *mut u8;\n`;
        out += `            ${raw}(${[...args, 'rp as usize as i32'].join(', ')});\n`;
        out += `            ${this.lift(fn.result!.type, 'rp')}\n`;
      } else if (fn.result) {
        out += `            let r = ${raw}(${args.join(', ')});\n            ${this.liftFlat(fn.result.type, ['r'])}\n`;
      } else {
        out += `            ${raw}(${args.join(', ')});\n`;
      }
      out += '        }\n    }\n\n';
    }
    return out;
  }

  exportItems(): { fns: string; macro: string; retWords: number } {
    let fns = '';
    let macro = '';
    let retWords = 1;
    for (const e of this.L.exports) {
      const name = snake(e.name).replace(/^r#/, '');
      const fnName = e.coreNames.fn.find((n) => !n.startsWith('cm32p2|'))!;
      const postName = e.coreNames.post.find((n) => !n.startsWith('cm32p2|'))!;
      const coreSig = e.core.params.map((c, i) => `a${i}: ${CORE_RUST[c]}`);
      const coreRet = e.core.results.length ? ` -> ${CORE_RUST[e.core.results[0]!]}` : '';
      fns += this.doc(this.funcDoc(e.name, true), '');
      fns += `#[doc(hidden)]\npub unsafe fn export_${name}(${['root: crate::RootFactory', ...coreSig].join(', ')})${coreRet} {\n`;
      const values: string[] = [];
      if (e.core.paramsInMemory) {
        for (const p of e.params) {
          const v = `p_${snake(p.name).replace(/^r#/, '')}`;
          fns += `    let ${v} = ${this.lift(p.type, `(a0 as u32 as usize as *const u8).add(${p.memoryOffset})`)};\n`;
          values.push(v);
        }
        // The caller allocated the argument area with cabi_realloc; it is ours to free.
        fns += `    free(a0 as u32 as usize as *mut u8, ${e.core.paramsTuple!.size}, ${e.core.paramsTuple!.align});\n`;
      } else {
        const vars = e.core.params.map((_, i) => `a${i}`);
        for (const p of e.params) {
          const v = `p_${snake(p.name).replace(/^r#/, '')}`;
          fns += `    let ${v} = ${this.liftFlat(p.type, vars)};\n`;
          values.push(v);
        }
        if (vars.length) throw new Error(`gen-rust: ${e.name}: ${vars.length} core parameters left over`);
      }
      const call = `crate::dispatch::${name}(${['root', ...values].join(', ')})`;
      if (!e.result) {
        fns += `    ${call};\n}\n\n`;
      } else if (e.core.resultInMemory) {
        retWords = Math.max(retWords, Math.ceil(e.result.size / 8));
        fns += `    let result: ${this.rust(e.result.type)} = ${call};\n`;
        fns += '    let rp = RET_AREA.get() as *mut u8;\n    let mut keep_ = Keep::new();\n    let keep = &mut keep_;\n';
        fns += this.lower(e.result.type, '&result', 'rp', '    ');
        // Lowered pointers refer into `result`'s heap buffers: keep it until post-return.
        fns += '    keep.hold(Box::new(result));\n    *POST_RETURN.get() = Some(keep_);\n    rp as usize as i32\n}\n\n';
      } else {
        fns += `    let result: ${this.rust(e.result.type)} = ${call};\n    ${this.lowerFlat(e.result.type, 'result', [], '    ').join(', ')}\n}\n\n`;
      }
      macro += `        #[export_name = "${fnName}"]\n        pub unsafe extern "C" fn __weir_export_${name}(${coreSig.join(', ')})${coreRet} {\n`
        + `            $crate::abi::export_${name}(${[`$root`, ...e.core.params.map((_, i) => `a${i}`)].join(', ')})\n        }\n`;
      if (e.result && e.core.resultInMemory) {
        fns += `#[doc(hidden)]\npub unsafe fn post_${name}(_ret: i32) {\n    *POST_RETURN.get() = None;\n}\n\n`;
        macro += `        #[export_name = "${postName}"]\n        pub unsafe extern "C" fn __weir_post_${name}(a0: i32) {\n            $crate::abi::post_${name}(a0)\n        }\n`;
      }
    }
    return { fns, macro, retWords };
  }

  file(): string {
    const ex = this.exportItems();
    return `// GENERATED by sdk-rust-guest/gen/gen-rust.ts from wit/weir.wit and
// plugin-abi/generated/layout.json — do not edit.
// Regenerate: node_modules/.bin/node sdk-rust-guest/gen/gen-rust.ts
//
// Canonical-ABI glue for the ${this.L.package} world \`${this.L.world}\`: the WIT types as Rust
// types, their lifting/lowering, the host imports with safe wrappers, and the exports.
#![allow(dead_code, unused_unsafe, unused_mut, unused_parens, clippy::all)]

use std::alloc::{self, Layout};
use std::any::Any;

/// Single-threaded global (wasm32 guests have one thread).
pub(crate) struct Global<T>(core::cell::UnsafeCell<T>);
unsafe impl<T> Sync for Global<T> {}
impl<T> Global<T> {
    pub(crate) const fn new(v: T) -> Global<T> {
        Global(core::cell::UnsafeCell::new(v))
    }
    pub(crate) fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// Buffers that must outlive a lowering: list storage, and for export results the value
/// whose heap data the lowered pointers refer to.
pub(crate) struct Keep {
    bufs: Vec<Vec<u64>>,
    held: Vec<Box<dyn Any>>,
}

impl Keep {
    pub(crate) fn new() -> Keep {
        Keep { bufs: Vec::new(), held: Vec::new() }
    }
    /// Zeroed storage aligned to 8 (the largest canonical-ABI alignment).
    pub(crate) fn alloc(&mut self, bytes: usize) -> *mut u8 {
        if bytes == 0 {
            return 8 as *mut u8;
        }
        let mut v = vec![0u64; (bytes + 7) / 8];
        let p = v.as_mut_ptr() as *mut u8;
        self.bufs.push(v);
        p
    }
    pub(crate) fn hold(&mut self, v: Box<dyn Any>) {
        self.held.push(v);
    }
}

static RET_AREA: Global<[u64; ${ex.retWords}]> = Global::new([0; ${ex.retWords}]);
static POST_RETURN: Global<Option<Keep>> = Global::new(None);

#[cold]
fn trap() -> ! {
    // An invalid discriminant means host and guest disagree on the ABI: stop the instance.
    panic!("weir-plugin: invalid canonical ABI value")
}

#[cold]
fn outside_weir(name: &str) -> ! {
    panic!("weir host function {} is only available to a wasm32 plugin running in Weir", name)
}

#[inline]
unsafe fn rd<T: Copy>(p: *const u8) -> T {
    core::ptr::read_unaligned(p as *const T)
}

#[inline]
unsafe fn wr<T>(p: *mut u8, v: T) {
    core::ptr::write_unaligned(p as *mut T, v)
}

#[inline]
unsafe fn wr_pair(p: *mut u8, ptr: *const u8, len: usize) {
    wr::<i32>(p, ptr as usize as i32);
    wr::<i32>(p.add(4), len as i32);
}

unsafe fn free(p: *mut u8, size: usize, align: usize) {
    if size != 0 {
        alloc::dealloc(p, Layout::from_size_align_unchecked(size, align));
    }
}

/// Takes ownership of a byte list the other side allocated with cabi_realloc(.., 1, len).
unsafe fn lift_bytes(ptr: i32, len: i32) -> Vec<u8> {
    let n = len as u32 as usize;
    if n == 0 {
        return Vec::new();
    }
    Vec::from_raw_parts(ptr as u32 as usize as *mut u8, n, n)
}

unsafe fn lift_string(ptr: i32, len: i32) -> String {
    match String::from_utf8(lift_bytes(ptr, len)) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    }
}

/// Lifts each element, then frees the list's storage (the elements' own buffers moved out).
unsafe fn lift_list<T>(ptr: i32, len: i32, size: usize, align: usize, f: impl Fn(*const u8) -> T) -> Vec<T> {
    let n = len as u32 as usize;
    let base = ptr as u32 as usize as *mut u8;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        out.push(f(base.add(i * size)));
    }
    if n != 0 {
        free(base, n * size, align);
    }
    out
}

/// The canonical ABI allocator the host uses to pass arguments and import results.
#[doc(hidden)]
pub unsafe fn cabi_realloc(old: i32, old_size: i32, align: i32, new_size: i32) -> i32 {
    let (old, old_size) = (old as u32 as usize as *mut u8, old_size as u32 as usize);
    let (align, new_size) = (align as u32 as usize, new_size as u32 as usize);
    if new_size == 0 {
        free(old, old_size, align);
        return align as i32;
    }
    let p = if old_size == 0 {
        alloc::alloc(Layout::from_size_align_unchecked(new_size, align))
    } else {
        alloc::realloc(old, Layout::from_size_align_unchecked(old_size, align), new_size)
    };
    if p.is_null() {
        alloc::handle_alloc_error(Layout::from_size_align_unchecked(new_size, align));
    }
    p as usize as i32
}

/// Types of \`${this.L.package}\` interface \`types\`.
pub mod types {
    use super::*;

${this.typeItems().trimEnd()}
}

use types::*;

${this.importModules().trimEnd()}

// ---- exports: lift the arguments, call crate::dispatch, lower the result ----

${ex.fns.trimEnd()}

/// Defines the core exports in the plugin's own crate; used by \`weir_plugin!\`.
#[doc(hidden)]
#[macro_export]
macro_rules! __weir_abi_exports {
    ($root:expr) => {
        #[export_name = "cabi_realloc"]
        pub unsafe extern "C" fn __weir_cabi_realloc(a0: i32, a1: i32, a2: i32, a3: i32) -> i32 {
            $crate::abi::cabi_realloc(a0, a1, a2, a3)
        }
${ex.macro.trimEnd()}
    };
}
`;
  }
}

const alignTo = (n: number, a: number): number => Math.ceil(n / a) * a;

/** The text of abi.rs for this WIT and layout. */
export function generateRust(witSource: string, layoutJson: string): string {
  return new Gen(JSON.parse(layoutJson) as Layout, parseWit(witSource)).file();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(OUT_PATH, generateRust(readFileSync(WIT_PATH, 'utf8'), readFileSync(LAYOUT_PATH, 'utf8')));
  console.log('wrote sdk-rust-guest/src/abi.rs');
}
