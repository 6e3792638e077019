/**
 * Just enough of the wasm binary formats to load a plugin: split a component into its
 * top-level sections (to pull out the embedded core modules) and read a core module's
 * function signatures, imports and exports (to check them against the ABI).
 */

export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref';

export interface FuncSig { readonly params: readonly ValType[]; readonly results: readonly ValType[] }
export interface CoreImport { readonly module: string; readonly name: string; readonly kind: 'func' | 'table' | 'memory' | 'global' | 'tag'; readonly sig?: FuncSig }
export interface CoreExport { readonly name: string; readonly kind: 'func' | 'table' | 'memory' | 'global' | 'tag'; readonly sig?: FuncSig }
export interface CoreModuleInfo { readonly imports: CoreImport[]; readonly exports: CoreExport[] }

const VALTYPES: Record<number, ValType> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128', 0x70: 'funcref', 0x6f: 'externref' };
const KINDS = ['func', 'table', 'memory', 'global', 'tag'] as const;

class Reader {
  pos: number;
  readonly end: number;
  readonly b: Uint8Array;
  constructor(b: Uint8Array, pos = 0, end = b.length) {
    this.b = b;
    this.pos = pos;
    this.end = end;
  }
  byte(): number {
    if (this.pos >= this.end) throw new Error('wasm: unexpected end of section');
    return this.b[this.pos++]!;
  }
  u32(): number {
    let result = 0;
    let shift = 0;
    for (;;) {
      const x = this.byte();
      result += (x & 0x7f) * 2 ** shift;
      if ((x & 0x80) === 0) return result;
      shift += 7;
      if (shift > 35) throw new Error('wasm: LEB128 too long');
    }
  }
  name(): string {
    const n = this.u32();
    const s = new TextDecoder().decode(this.b.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
  valtype(): ValType {
    const t = VALTYPES[this.byte()];
    if (!t) throw new Error('wasm: unsupported value type');
    return t;
  }
  limits(): void {
    const flags = this.byte();
    this.u32();
    if (flags & 1) this.u32();
  }
}

/** `header` is where the section id byte sits; `start`..`end` is its content. */
export interface Section { readonly id: number; readonly header: number; readonly start: number; readonly end: number }

/** Top-level sections of a core module or component binary. */
export function sections(bytes: Uint8Array): { layer: 'module' | 'component'; sections: Section[] } {
  if (bytes.length < 8 || bytes[0] !== 0 || bytes[1] !== 0x61 || bytes[2] !== 0x73 || bytes[3] !== 0x6d) throw new Error('not a wasm binary (bad magic)');
  const layer = bytes[6] === 1 && bytes[7] === 0 ? 'component' : 'module';
  const r = new Reader(bytes, 8);
  const out: Section[] = [];
  while (r.pos < bytes.length) {
    const header = r.pos;
    const id = r.byte();
    const size = r.u32();
    out.push({ id, header, start: r.pos, end: r.pos + size });
    r.pos += size;
  }
  if (r.pos !== bytes.length) throw new Error('wasm: section runs past the end');
  return { layer, sections: out };
}

/** The core modules embedded at the top level of a component, in order. */
export function coreModulesOf(component: Uint8Array): Uint8Array[] {
  const { layer, sections: ss } = sections(component);
  if (layer !== 'component') throw new Error('not a component (it is a core module)');
  // Component section id 1 is a core module, stored as a complete module binary.
  return ss.filter((s) => s.id === 1).map((s) => component.slice(s.start, s.end));
}

/** Imports and exports of a core module, with function signatures. */
export function coreModuleInfo(bytes: Uint8Array): CoreModuleInfo {
  const { layer, sections: ss } = sections(bytes);
  if (layer !== 'module') throw new Error('not a core module');
  const types: FuncSig[] = [];
  const funcTypes: number[] = [];
  const imports: CoreImport[] = [];
  const exports: CoreExport[] = [];
  const desc = (r: Reader): { kind: CoreImport['kind']; sig?: FuncSig } => {
    const kind = KINDS[r.byte()];
    if (!kind) throw new Error('wasm: unknown import kind');
    if (kind === 'func') {
      const sig = types[r.u32()];
      if (!sig) throw new Error('wasm: bad type index');
      return { kind, sig };
    }
    if (kind === 'table') { r.byte(); r.limits(); } else if (kind === 'memory') r.limits();
    else if (kind === 'global') { r.valtype(); r.byte(); } else { r.byte(); r.u32(); }
    return { kind };
  };
  for (const s of ss) {
    const r = new Reader(bytes, s.start, s.end);
    if (s.id === 1) {
      for (let n = r.u32(); n > 0; n--) {
        if (r.byte() !== 0x60) throw new Error('wasm: only function types are supported');
        const params = Array.from({ length: r.u32() }, () => r.valtype());
        const results = Array.from({ length: r.u32() }, () => r.valtype());
        types.push({ params, results });
      }
    } else if (s.id === 2) {
      for (let n = r.u32(); n > 0; n--) {
        const module = r.name();
        const name = r.name();
        const d = desc(r);
        imports.push({ module, name, ...d });
        if (d.kind === 'func') funcTypes.push(-1);
      }
    } else if (s.id === 3) {
      for (let n = r.u32(); n > 0; n--) funcTypes.push(r.u32());
    } else if (s.id === 7) {
      const importedFuncs = imports.filter((i) => i.kind === 'func');
      for (let n = r.u32(); n > 0; n--) {
        const name = r.name();
        const kind = KINDS[r.byte()];
        const index = r.u32();
        if (!kind) throw new Error('wasm: unknown export kind');
        let sig: FuncSig | undefined;
        if (kind === 'func') sig = index < importedFuncs.length ? importedFuncs[index]!.sig : types[funcTypes[index]!];
        exports.push({ name, kind, sig });
      }
    }
  }
  return { imports, exports };
}

/**
 * Rewrites a core module's export names (gives test plugins their ABI names): `rename`
 * returns the new name, undefined to keep it, or '' to drop the export.
 */
export function renameExports(bytes: Uint8Array, rename: (name: string) => string | undefined): Uint8Array {
  const { sections: ss } = sections(bytes);
  const exp = ss.find((s) => s.id === 7);
  if (!exp) return bytes;
  const r = new Reader(bytes, exp.start, exp.end);
  const body: number[] = [];
  const leb = (v: number): void => { do { let b = v & 0x7f; v = Math.floor(v / 128); if (v) b |= 0x80; body.push(b); } while (v); };
  const enc = new TextEncoder();
  const entries: { name: string; kind: number; index: number }[] = [];
  for (let n = r.u32(); n > 0; n--) {
    const name = r.name();
    const kind = r.byte();
    const index = r.u32();
    const to = rename(name);
    if (to !== undefined && to !== '') entries.push({ name: to, kind, index });
    else if (to === undefined) entries.push({ name, kind, index });
  }
  leb(entries.length);
  for (const e of entries) { const nb = enc.encode(e.name); leb(nb.length); body.push(...nb); body.push(e.kind); leb(e.index); }
  const head: number[] = [7];
  const size = body.length;
  let v = size;
  do { let b = v & 0x7f; v = Math.floor(v / 128); if (v) b |= 0x80; head.push(b); } while (v);
  const out = new Uint8Array(bytes.length - (exp.end - exp.header) + head.length + size);
  out.set(bytes.subarray(0, exp.header), 0);
  let o = exp.header;
  out.set(head, o); o += head.length;
  out.set(body, o); o += size;
  out.set(bytes.subarray(exp.end), o);
  return out;
}
