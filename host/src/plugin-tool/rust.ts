/**
 * Builds a Rust plugin crate (one that depends on `weir-plugin`, sdk-rust-guest/) into a core
 * WebAssembly module with cargo, offline, for wasm32-unknown-unknown. The caller
 * componentizes the bytes.
 *
 * Toolchain choice: Debian's `/usr/bin/cargo` + `/usr/bin/rustc` when its wasm32 standard
 * library is installed (a rustup `rustc` earlier in PATH usually has no wasm32 std), else
 * whatever `cargo`/`rustc` are in PATH if their sysroot has the wasm32 target.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const TARGET = 'wasm32-unknown-unknown';

export const NO_WASM_RUST =
  'no Rust compiler with the wasm32 target: install Debian\'s rustc, cargo, libstd-rust-dev-wasm32 and lld, or run rustup target add wasm32-unknown-unknown';

export interface RustToolchain {
  readonly cargo: string;
  /** Environment additions for cargo (RUSTC for Debian's compiler). */
  readonly env: Record<string, string>;
  readonly description: string;
}

interface Run { code: number | null; stdout: string; stderr: string }

function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; onStderr?: (s: string) => void } = {}): Promise<Run> {
  return new Promise((done) => {
    let child;
    try {
      child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch {
      done({ code: null, stdout: '', stderr: '' });
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => {
      err.push(b);
      opts.onStderr?.(b.toString('utf8'));
    });
    child.on('error', () => done({ code: null, stdout: '', stderr: Buffer.concat(err).toString('utf8') }));
    child.on('close', (code) => done({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

async function hasWasmStd(rustc: string): Promise<boolean> {
  const r = await run(rustc, ['--print', 'sysroot']);
  if (r.code !== 0) return false;
  return existsSync(join(r.stdout.trim(), 'lib', 'rustlib', TARGET, 'lib'));
}

let found: Promise<RustToolchain | undefined> | undefined;

/** The Rust toolchain that can build wasm32 plugins here, or undefined (checked once per process). */
export function findRustToolchain(): Promise<RustToolchain | undefined> {
  found ??= (async (): Promise<RustToolchain | undefined> => {
    if (existsSync('/usr/bin/cargo') && existsSync('/usr/bin/rustc') && (await hasWasmStd('/usr/bin/rustc'))) {
      return { cargo: '/usr/bin/cargo', env: { RUSTC: '/usr/bin/rustc' }, description: 'Debian rustc (/usr/bin/rustc)' };
    }
    if ((await hasWasmStd('rustc')) && (await run('cargo', ['--version'])).code === 0) {
      return { cargo: 'cargo', env: {}, description: 'rustc from PATH' };
    }
    return undefined;
  })();
  return found;
}

interface Artifact { reason?: string; target?: { kind?: string[] }; filenames?: string[] }

/**
 * Compiles the Rust plugin crate in `dir` (the folder holding its Cargo.toml, whose `[lib]`
 * has `crate-type = ["cdylib"]`) and returns the core module bytes.
 */
export async function compileRust(dir: string, opts: { release?: boolean; log?: (s: string) => void } = {}): Promise<Uint8Array> {
  const crate = resolve(dir);
  const manifest = join(crate, 'Cargo.toml');
  if (!existsSync(manifest)) throw new Error(`no Rust crate in ${crate}: Cargo.toml not found`);
  const tc = await findRustToolchain();
  if (!tc) throw new Error(NO_WASM_RUST);
  const release = opts.release ?? true;
  const args = ['build', '--offline', '--target', TARGET, '--manifest-path', manifest, '--message-format=json-render-diagnostics'];
  if (release) args.push('--release');
  opts.log?.(`${tc.cargo} ${args.join(' ')} (${tc.description})`);
  const r = await run(tc.cargo, args, { cwd: crate, env: { ...process.env, ...tc.env }, onStderr: opts.log });
  if (r.code !== 0) {
    const tail = r.stderr.trim().split('\n').slice(-40).join('\n');
    throw new Error(`cargo build failed for ${crate} (exit ${r.code}):\n${tail}`);
  }
  // cargo names the artifacts it built; the cdylib's .wasm is ours.
  let wasmPath: string | undefined;
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const msg = JSON.parse(line) as Artifact;
    if (msg.reason === 'compiler-artifact' && msg.target?.kind?.includes('cdylib')) {
      wasmPath = msg.filenames?.find((f) => f.endsWith('.wasm')) ?? wasmPath;
    }
  }
  if (!wasmPath) throw new Error(`cargo built no .wasm for ${crate}: its [lib] needs crate-type = ["cdylib"]`);
  return new Uint8Array(readFileSync(wasmPath));
}
