/**
 * The machine-readable guest-side layout (`generated/layout.json`): what a guest SDK needs to
 * generate its glue without re-implementing the canonical ABI — sizes, alignments, field and
 * payload offsets, discriminants, and each function's core name and signature.
 */
import { coreExportNames, coreImportModules } from './emit.ts';
import { discSize, fieldOffsets, funcAbi, layout, payloadOffset } from './layout.ts';
import type { Func, Package, Ty, World } from './wit.ts';

function tyJson(t: Ty): unknown {
  switch (t.k) {
    case 'prim': return t.name;
    case 'ref': return { ref: t.name };
    case 'list': return { list: tyJson(t.el) };
    case 'option': return { option: tyJson(t.t) };
    case 'result': return { result: { ok: t.ok ? tyJson(t.ok) : null, err: t.err ? tyJson(t.err) : null } };
    case 'tuple': return { tuple: t.ts.map(tyJson) };
  }
}

function funcJson(pkg: Package, f: Func, side: 'export' | 'import'): unknown {
  const abi = funcAbi(pkg, f.params.map((p) => p.ty), f.result, side);
  const tl = layout(pkg, abi.paramsTuple);
  const offs = fieldOffsets(pkg, abi.paramsTuple);
  return {
    name: f.name,
    params: f.params.map((p, i) => ({ name: p.name, type: tyJson(p.ty), flat: layout(pkg, p.ty).flat, memoryOffset: offs[i] })),
    result: f.result ? { type: tyJson(f.result), ...layout(pkg, f.result) } : null,
    core: {
      params: abi.coreParams,
      results: abi.coreResults,
      paramsInMemory: abi.paramsInMemory,
      paramsTuple: abi.paramsInMemory ? { size: tl.size, align: tl.align } : null,
      resultInMemory: abi.resultInMemory,
    },
  };
}

export function layoutJson(pkg: Package, world: World): string {
  const types: Record<string, unknown> = {};
  for (const d of pkg.types.values()) {
    const t: Ty = { k: 'ref', name: d.name };
    const l = layout(pkg, t);
    const base = { kind: d.kind, size: l.size, align: l.align, flat: l.flat };
    if (d.kind === 'alias') types[d.name] = { ...base, type: tyJson(d.ty) };
    else if (d.kind === 'record') {
      const offs = fieldOffsets(pkg, t);
      types[d.name] = { ...base, fields: d.fields.map((f, i) => ({ name: f.name, type: tyJson(f.ty), offset: offs[i] })) };
    } else {
      types[d.name] = {
        ...base,
        discriminantSize: discSize(d.cases.length),
        payloadOffset: payloadOffset(pkg, t),
        cases: d.cases.map((c, i) => ({ name: c.name, index: i, type: c.ty ? tyJson(c.ty) : null })),
      };
    }
  }
  const imports = world.imports.map((name) => {
    const iface = pkg.interfaces.find((i) => i.name === name)!;
    return { interface: name, coreModules: coreImportModules(pkg, name), funcs: iface.funcs.map((f) => funcJson(pkg, f, 'import')) };
  });
  const exports = world.exports.map((f) => ({ coreNames: coreExportNames(f), ...(funcJson(pkg, f, 'export') as object) }));
  return JSON.stringify({
    generatedBy: 'plugin-abi/src/gen/main.ts — do not edit',
    package: `${pkg.name}@${pkg.version}`,
    world: world.name,
    notes: [
      'Sizes/offsets in bytes (canonical ABI, wasm32). Strings and lists are {ptr: u32, len: u32}; strings are UTF-8.',
      'Guest exports: memory + cabi_realloc(old_ptr, old_size, align, new_size) (or cm32p2_memory / cm32p2_realloc).',
      'Export results in memory: the export returns a pointer to them; the host calls the post-return export afterwards so the guest can free.',
      'Import results in memory: the guest passes a return-area pointer as the last core parameter; lists/strings inside are allocated with cabi_realloc.',
    ],
    types,
    imports,
    exports,
  }, null, 2) + '\n';
}
