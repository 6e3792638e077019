/**
 * Canonical ABI layout of WIT types (component-model `CanonicalABI.md`): size and alignment
 * in linear memory, the flattened core-wasm value types, and where each field or payload
 * sits. Both the TS codec generator and `generated/layout.json` (for guest SDKs) use it.
 */
import type { Package, Ty, TypeDef } from './wit.ts';

export type CoreTy = 'i32' | 'i64' | 'f32' | 'f64';

/** Flattened values above these counts go through linear memory instead. */
export const MAX_FLAT_PARAMS = 16;
export const MAX_FLAT_RESULTS = 1;

export interface Layout {
  readonly size: number;
  readonly align: number;
  readonly flat: readonly CoreTy[];
}

export const alignTo = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Number of bytes of a variant discriminant for `n` cases. */
export const discSize = (n: number): number => (n <= 256 ? 1 : n <= 65536 ? 2 : 4);

function join(a: CoreTy, b: CoreTy): CoreTy {
  if (a === b) return a;
  if ((a === 'i32' && b === 'f32') || (a === 'f32' && b === 'i32')) return 'i32';
  return 'i64';
}

/** Cases of a variant-like type: variant, enum, option and result all share one layout. */
export function casesOf(pkg: Package, t: Ty): (Ty | undefined)[] | undefined {
  const r = resolve(pkg, t);
  if (r.k === 'option') return [undefined, r.t];
  if (r.k === 'result') return [r.ok, r.err];
  if (r.k === 'ref') {
    const d = pkg.types.get(r.name)!;
    if (d.kind === 'variant' || d.kind === 'enum') return d.cases.map((c) => c.ty);
  }
  return undefined;
}

/** Follows aliases to the underlying type. */
export function resolve(pkg: Package, t: Ty): Ty {
  while (t.k === 'ref') {
    const d: TypeDef = pkg.types.get(t.name)!;
    if (d.kind !== 'alias') return t;
    t = d.ty;
  }
  return t;
}

export function fieldTypes(pkg: Package, t: Ty): readonly Ty[] | undefined {
  const r = resolve(pkg, t);
  if (r.k === 'tuple') return r.ts;
  if (r.k === 'ref') {
    const d = pkg.types.get(r.name)!;
    if (d.kind === 'record') return d.fields.map((f) => f.ty);
  }
  return undefined;
}

const PRIM: Record<string, Layout> = {
  bool: { size: 1, align: 1, flat: ['i32'] },
  u8: { size: 1, align: 1, flat: ['i32'] },
  s8: { size: 1, align: 1, flat: ['i32'] },
  u16: { size: 2, align: 2, flat: ['i32'] },
  s16: { size: 2, align: 2, flat: ['i32'] },
  u32: { size: 4, align: 4, flat: ['i32'] },
  s32: { size: 4, align: 4, flat: ['i32'] },
  f32: { size: 4, align: 4, flat: ['f32'] },
  u64: { size: 8, align: 8, flat: ['i64'] },
  s64: { size: 8, align: 8, flat: ['i64'] },
  f64: { size: 8, align: 8, flat: ['f64'] },
  string: { size: 8, align: 4, flat: ['i32', 'i32'] },
};

export function layout(pkg: Package, t: Ty): Layout {
  const r = resolve(pkg, t);
  if (r.k === 'prim') return PRIM[r.name]!;
  if (r.k === 'list') return { size: 8, align: 4, flat: ['i32', 'i32'] };
  const fields = fieldTypes(pkg, r);
  if (fields) {
    let size = 0;
    let align = 1;
    const flat: CoreTy[] = [];
    for (const f of fields) {
      const l = layout(pkg, f);
      size = alignTo(size, l.align) + l.size;
      align = Math.max(align, l.align);
      flat.push(...l.flat);
    }
    return { size: alignTo(size, align), align, flat };
  }
  const cases = casesOf(pkg, r)!;
  const ds = discSize(cases.length);
  let maxSize = 0;
  let align = ds;
  const payload: CoreTy[] = [];
  for (const c of cases) {
    if (!c) continue;
    const l = layout(pkg, c);
    maxSize = Math.max(maxSize, l.size);
    align = Math.max(align, l.align);
    l.flat.forEach((ft, i) => { payload[i] = payload[i] === undefined ? ft : join(payload[i]!, ft); });
  }
  const off = payloadOffset(pkg, r);
  return { size: alignTo(off + maxSize, align), align, flat: ['i32', ...payload] };
}

/** Byte offset of a variant's payload: after the discriminant, aligned to the widest case. */
export function payloadOffset(pkg: Package, t: Ty): number {
  const cases = casesOf(pkg, t)!;
  let a = 1;
  for (const c of cases) if (c) a = Math.max(a, layout(pkg, c).align);
  return alignTo(discSize(cases.length), a);
}

/** Byte offsets of a record's or tuple's fields. */
export function fieldOffsets(pkg: Package, t: Ty): number[] {
  let size = 0;
  return fieldTypes(pkg, t)!.map((f) => {
    const l = layout(pkg, f);
    size = alignTo(size, l.align);
    const off = size;
    size += l.size;
    return off;
  });
}

/** How a function's parameters and results cross the core-wasm boundary. */
export interface FuncAbi {
  /** Core params of the lowered function as the guest sees it. */
  readonly coreParams: readonly CoreTy[];
  readonly coreResults: readonly CoreTy[];
  /** Params are one pointer to a tuple in guest memory. */
  readonly paramsInMemory: boolean;
  /** Export: the guest returns a pointer to the result; import: the guest passes a pointer to write it to. */
  readonly resultInMemory: boolean;
  readonly paramsTuple: Ty;
}

export function funcAbi(pkg: Package, params: readonly Ty[], result: Ty | undefined, side: 'export' | 'import'): FuncAbi {
  const paramsTuple: Ty = { k: 'tuple', ts: params };
  const pflat = params.flatMap((p) => layout(pkg, p).flat);
  const rflat = result ? layout(pkg, result).flat : [];
  const paramsInMemory = pflat.length > MAX_FLAT_PARAMS;
  const resultInMemory = rflat.length > MAX_FLAT_RESULTS;
  const coreParams: CoreTy[] = paramsInMemory ? ['i32'] : [...pflat];
  let coreResults: CoreTy[] = [...rflat];
  if (resultInMemory) {
    if (side === 'export') coreResults = ['i32'];
    else { coreResults = []; coreParams.push('i32'); }
  }
  return { coreParams, coreResults, paramsInMemory, resultInMemory, paramsTuple };
}
