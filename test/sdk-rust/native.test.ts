/**
 * The SDK's own unit tests (config access, views, decision merging) run natively with every
 * Rust toolchain found: Debian's rustc 1.63 (the oldest we support) and the rustc in PATH
 * (usually a current rustup toolchain), so the crate stays within 1.63's language.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const MANIFEST = fileURLToPath(new URL('../../sdk-rust-guest/Cargo.toml', import.meta.url));

function cargoTest(cargo: string, env: Record<string, string>): { ok: boolean; out: string } {
  const target = mkdtempSync(join(tmpdir(), 'weir-sdk-native-'));
  try {
    const r = spawnSync(cargo, ['test', '--offline', '--manifest-path', MANIFEST], {
      encoding: 'utf8', env: { ...process.env, ...env, CARGO_TARGET_DIR: target }, timeout: 300_000,
    });
    return { ok: r.status === 0, out: `${r.stdout}\n${r.stderr}` };
  } finally {
    rmSync(target, { recursive: true, force: true });
  }
}

const debian = existsSync('/usr/bin/cargo') && existsSync('/usr/bin/rustc');
const pathVersion = spawnSync('rustc', ['--version'], { encoding: 'utf8' });
const pathRustc = pathVersion.status === 0 ? pathVersion.stdout.trim() : undefined;
const debianVersion = debian ? spawnSync('/usr/bin/rustc', ['--version'], { encoding: 'utf8' }).stdout.trim() : undefined;

test('SDK unit tests pass with Debian rustc', { skip: !debian && 'no /usr/bin/rustc' }, (t) => {
  t.diagnostic(debianVersion ?? '');
  const r = cargoTest('/usr/bin/cargo', { RUSTC: '/usr/bin/rustc' });
  assert.ok(r.ok, r.out);
});

test('SDK unit tests pass with the rustc in PATH', { skip: (!pathRustc || pathRustc === debianVersion) && 'no other rustc in PATH' }, (t) => {
  t.diagnostic(pathRustc ?? '');
  const r = cargoTest('cargo', {});
  assert.ok(r.ok, r.out);
});
