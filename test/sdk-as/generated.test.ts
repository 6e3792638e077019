/**
 * sdk-assemblyscript/assembly/generated/ must be exactly what the generator makes from
 * wit/weir.wit. If this fails, regenerate: node_modules/.bin/node sdk-assemblyscript/gen/gen-as.ts
 */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { OUT_DIR, WIT_PATH, generate } from '../../sdk-assemblyscript/gen/gen-as.ts';

const HINT = 'run node_modules/.bin/node sdk-assemblyscript/gen/gen-as.ts';

test('AssemblyScript bindings are up to date with wit/weir.wit', () => {
  const files = generate(readFileSync(WIT_PATH, 'utf8'));
  assert.deepEqual(readdirSync(OUT_DIR).sort(), Object.keys(files).sort(), `sdk-assemblyscript/assembly/generated/ has missing or extra files; ${HINT}`);
  for (const [name, text] of Object.entries(files)) {
    assert.ok(readFileSync(OUT_DIR + name, 'utf8') === text, `sdk-assemblyscript/assembly/generated/${name} is stale; ${HINT}`);
  }
});

test('every host function has a wrapper and every export a core function', () => {
  const { 'abi.ts': abi, 'exports.ts': exportsTs } = generate(readFileSync(WIT_PATH, 'utf8'));
  const layout = JSON.parse(readFileSync(new URL('../../plugin-abi/generated/layout.json', import.meta.url), 'utf8')) as {
    package: string; imports: { interface: string; funcs: { name: string }[] }[]; exports: { name: string; result: unknown }[];
  };
  const camel = (s: string) => s.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  const version = layout.package.replace(/.*@/, '').replace(/\./g, '\\.');
  assert.ok(layout.imports.length >= 2, 'host and exchange');
  for (const i of layout.imports) {
    for (const f of i.funcs) {
      assert.match(abi, new RegExp(`@external\\("weir:proxy/${i.interface}@${version}", "${f.name}"\\)`));
      assert.match(abi, new RegExp(`export function ${i.interface}${camel(`-${f.name}`)}\\(`));
    }
  }
  for (const e of layout.exports) {
    const snake = e.name.replace(/-/g, '_');
    assert.match(exportsTs, new RegExp(`\\bweir_x_${snake},`));
    if (e.result) assert.match(exportsTs, new RegExp(`\\bweir_post_${snake},`));
  }
  assert.match(exportsTs, /cabi_realloc/);
});
