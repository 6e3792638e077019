/** compileRust: toolchain discovery and its errors. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { NO_WASM_RUST, compileRust, findRustToolchain } from '../../host/src/plugin-tool/rust.ts';

test('the missing-toolchain message names the Debian packages and the rustup target', () => {
  assert.match(NO_WASM_RUST, /^no Rust compiler with the wasm32 target: /);
  for (const p of ['rustc', 'cargo', 'libstd-rust-dev-wasm32', 'lld', 'rustup target add wasm32-unknown-unknown']) assert.ok(NO_WASM_RUST.includes(p), p);
});

test('a folder without Cargo.toml is refused before any toolchain runs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'weir-no-crate-'));
  await assert.rejects(compileRust(dir), /no Rust crate in .*: Cargo.toml not found/);
});

test('a crate that does not compile reports cargo\'s errors', { skip: !(await findRustToolchain()) && 'no wasm32 Rust compiler' }, async () => {
  const { writeFileSync, mkdirSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'weir-bad-crate-'));
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'Cargo.toml'), '[package]\nname = "bad"\nversion = "0.1.0"\nedition = "2021"\n[lib]\ncrate-type = ["cdylib"]\n[workspace]\n');
  writeFileSync(join(dir, 'src/lib.rs'), 'pub fn f() -> u32 { "not a number" }\n');
  const logged: string[] = [];
  await assert.rejects(compileRust(dir, { log: (s) => logged.push(s) }), /cargo build failed[\s\S]*mismatched types/);
  assert.match(logged[0]!, /build --offline --target wasm32-unknown-unknown/);
});
