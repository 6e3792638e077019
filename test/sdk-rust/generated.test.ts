/**
 * sdk-rust-guest/src/abi.rs must be exactly what the generator makes from wit/weir.wit and
 * plugin-abi/generated/layout.json. If this fails, regenerate:
 *   node_modules/.bin/node sdk-rust-guest/gen/gen-rust.ts
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { LAYOUT_PATH, OUT_PATH, WIT_PATH, generateRust, pascal, snake } from '../../sdk-rust-guest/gen/gen-rust.ts';

test('abi.rs is up to date with the WIT and layout.json', () => {
  const fresh = generateRust(readFileSync(WIT_PATH, 'utf8'), readFileSync(LAYOUT_PATH, 'utf8'));
  assert.ok(readFileSync(OUT_PATH, 'utf8') === fresh, 'sdk-rust-guest/src/abi.rs is stale; run node_modules/.bin/node sdk-rust-guest/gen/gen-rust.ts');
});

test('Rust names follow WIT names mechanically', () => {
  assert.equal(snake('on-request-headers'), 'on_request_headers');
  assert.equal(snake('type'), 'r#type');
  assert.equal(pascal('local-reply'), 'LocalReply');
  const abi = readFileSync(OUT_PATH, 'utf8');
  const layout = JSON.parse(readFileSync(LAYOUT_PATH, 'utf8')) as { imports: { funcs: { name: string }[] }[]; exports: { name: string }[]; types: Record<string, unknown> };
  for (const f of layout.imports[0]!.funcs) {
    assert.ok(abi.includes(`#[link_name = "${f.name}"]`), `raw import ${f.name}`);
    assert.ok(abi.includes(`pub fn ${snake(f.name)}(`), `safe wrapper ${snake(f.name)}`);
  }
  for (const e of layout.exports) assert.ok(abi.includes(`#[export_name = "${e.name}"]`), `export ${e.name}`);
  for (const t of Object.keys(layout.types)) assert.match(abi, new RegExp(`pub (struct|enum|type) ${pascal(t)}\\b`), `type ${pascal(t)}`);
});

test('the generator refuses WIT shapes it does not know', () => {
  const layout = JSON.parse(readFileSync(LAYOUT_PATH, 'utf8')) as { types: Record<string, { fields?: { type: unknown }[] }> };
  layout.types['header']!.fields![1]!.type = { tuple: ['u8', 'u8'] };
  assert.throws(() => generateRust(readFileSync(WIT_PATH, 'utf8'), JSON.stringify(layout)), /gen-rust: unsupported type \{"tuple"/);
});
