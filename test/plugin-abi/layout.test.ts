/**
 * The generator's canonical-ABI layouts agree with wasm-tools: the core signatures we compute
 * for every export and host import equal those of the stub core module wasm-tools generates
 * for the same world (componentEmbed with dummy: true).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { PLUGIN_WORLD } from '../../plugin-abi/generated/world.ts';
import { WIT_PATH } from '../../plugin-abi/src/gen/main.ts';
import { layout } from '../../plugin-abi/src/gen/layout.ts';
import { parseWit } from '../../plugin-abi/src/gen/wit.ts';
import { coreModuleInfo } from '../../plugin-abi/src/loader/wasm-binary.ts';

const WIT = readFileSync(WIT_PATH, 'utf8');

test('core signatures match wasm-tools for every export and import', async () => {
  const { componentEmbed } = await import('@bytecodealliance/jco-transpile/wasm-tools');
  const stub = coreModuleInfo(await componentEmbed({ witSource: WIT, world: 'plugin', dummy: true, stringEncoding: 'utf8' }));
  for (const e of PLUGIN_WORLD.exports) {
    const got = stub.exports.find((x) => e.coreNames.includes(x.name));
    assert.ok(got?.sig, `stub has no export for ${e.name}`);
    assert.deepStrictEqual({ params: got.sig.params, results: got.sig.results }, { params: e.params, results: e.results }, e.name);
    const post = stub.exports.find((x) => e.postNames.includes(x.name));
    assert.deepStrictEqual(post?.sig?.params, e.results.length ? ['i32'] : [], `${e.name} post-return`);
  }
  // Every imported interface (host, crypto): each stub import is one of its functions.
  assert.equal(stub.imports.length, PLUGIN_WORLD.imports.reduce((n, imp) => n + imp.funcs.length, 0));
  for (const i of stub.imports) {
    const host = PLUGIN_WORLD.imports.find((imp) => imp.coreModules.includes(i.module));
    assert.ok(host, i.module);
    const f = host.funcs.find((x) => x.name === i.name);
    assert.ok(f && i.sig, i.name);
    assert.deepStrictEqual({ params: i.sig.params, results: i.sig.results }, { params: f.params, results: f.results }, i.name);
  }
});

test('layouts of a few types by hand (canonical ABI rules)', () => {
  const pkg = parseWit(WIT);
  const ref = (name: string) => layout(pkg, { k: 'ref', name });
  // Two strings: 2 × (ptr, len).
  assert.deepStrictEqual(ref('header'), { size: 16, align: 4, flat: ['i32', 'i32', 'i32', 'i32'] });
  // u8 discriminant, payload aligned to the widest case (s64/f64 → 8).
  assert.deepStrictEqual(ref('config-value'), { size: 16, align: 8, flat: ['i32', 'i64', 'i32'] });
  // Enum: one byte.
  assert.deepStrictEqual(ref('hook'), { size: 1, align: 1, flat: ['i32'] });
  // option<u32> inside a record: disc at 20, value at 24.
  assert.deepStrictEqual(ref('upstream-info').size, 28);
});

test('every WIT item has a /// doc comment', () => {
  const pkg = parseWit(WIT);
  const missing: string[] = [];
  for (const i of pkg.interfaces) {
    if (!i.doc) missing.push(`interface ${i.name}`);
    for (const t of i.types) {
      if (!t.doc) missing.push(t.name);
      if (t.kind === 'record') t.fields.forEach((f) => f.doc || missing.push(`${t.name}.${f.name}`));
      if (t.kind === 'variant' || t.kind === 'enum') t.cases.forEach((c) => c.doc || missing.push(`${t.name}.${c.name}`));
    }
    for (const f of i.funcs) if (!f.doc) missing.push(`${i.name}.${f.name}`);
  }
  for (const w of pkg.worlds) {
    if (!w.doc) missing.push(`world ${w.name}`);
    for (const f of w.exports) if (!f.doc) missing.push(`export ${f.name}`);
  }
  assert.deepStrictEqual(missing, []);
});

test('the parser refuses constructs outside the supported subset, with a line number', () => {
  assert.throws(() => parseWit('package a:b@0.1.0;\ninterface i {\n  flags f { a }\n}\n'), /wit:3: unsupported interface item flags/);
  assert.throws(() => parseWit('package a:b@0.1.0;\ninterface i {\n  type t = char;\n}\n'), /wit:3: unsupported type char/);
  assert.throws(() => parseWit('package a:b@0.1.0;\ninterface i {\n  type t = nope;\n}\n'), /unknown type nope/);
});
