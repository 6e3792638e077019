/**
 * `weir plugin build [DIR]`: compile a plugin project to a core module, make it a component
 * of the `weir:proxy/plugin` world, check it with the proxy's loader and write it out.
 *
 *   DIR ──detect──▶ AssemblyScript (asconfig.json or assembly/)  ─asc─▶ core ─rename─┐
 *              └──▶ Rust (Cargo.toml) ─compileRust (./rust.ts)─▶ core ───────────────┤
 *                                                   componentize ─▶ validate ─▶ DIR/build/<name>.wasm
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renameExports } from '../../../plugin-abi/src/loader/wasm-binary.ts';
import { componentize, PluginToolError, validateComponent } from './componentize.ts';

export type PluginLang = 'as' | 'rust';

export const SDK_AS_DIR = fileURLToPath(new URL('../../../sdk-assemblyscript/', import.meta.url));
const SDK_PACKAGE = '@weir/sdk-assemblyscript';

export interface BuildOptions {
  /** Output file; default: the manifest's choice, else DIR/build/<name>.wasm. */
  out?: string;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface BuildResult {
  lang: PluginLang;
  name: string;
  outFile: string;
  /** Bytes of the component written. */
  size: number;
  /** Bytes of the core module inside it. */
  coreSize: number;
  /** Milliseconds per step. */
  ms: { compile: number; componentize: number; validate: number; total: number };
}

/** AssemblyScript if asconfig.json or assembly/ exists, Rust if Cargo.toml does. */
export function detectLang(dir: string): PluginLang {
  if (existsSync(join(dir, 'asconfig.json')) || existsSync(join(dir, 'assembly'))) return 'as';
  if (existsSync(join(dir, 'Cargo.toml'))) return 'rust';
  throw new PluginToolError(`${dir}: not a plugin project (expected asconfig.json or assembly/ for AssemblyScript, Cargo.toml for Rust)`);
}

function readJson(file: string): Record<string, unknown> | undefined {
  if (!existsSync(file)) return undefined;
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new PluginToolError(`${file}: ${(err as Error).message}`);
  }
}

/** The plugin's name and output file from its manifest (package.json `weir.out`, Cargo.toml `[package.metadata.weir] out`). */
export function projectInfo(dir: string, lang: PluginLang): { name: string; out: string | undefined } {
  if (lang === 'as') {
    const pkg = readJson(join(dir, 'package.json'));
    const name = typeof pkg?.['name'] === 'string' ? pkg['name'].replace(/^@[^/]+\//, '') : basename(resolve(dir));
    const weir = pkg?.['weir'] as { out?: unknown } | undefined;
    return { name, out: typeof weir?.out === 'string' ? weir.out : undefined };
  }
  const toml = readFileSync(join(dir, 'Cargo.toml'), 'utf8');
  // Just the two keys we need; a full TOML parser is not worth a dependency here.
  const section = (header: string): string => {
    const i = toml.search(new RegExp(`^\\[${header.replace(/\./g, '\\.')}\\]\\s*$`, 'm'));
    if (i < 0) return '';
    const rest = toml.slice(toml.indexOf('\n', i) + 1);
    const end = rest.search(/^\[/m);
    return end < 0 ? rest : rest.slice(0, end);
  };
  const key = (text: string, k: string): string | undefined => new RegExp(`^\\s*${k}\\s*=\\s*"([^"]*)"`, 'm').exec(text)?.[1];
  return { name: key(section('package'), 'name') ?? basename(resolve(dir)), out: key(section('package.metadata.weir'), 'out') };
}

/** AS export name → ABI name (see sdk-assemblyscript/gen/gen-as.ts for the `weir_x_` scheme). */
export function abiExportName(name: string): string | undefined {
  if (name.startsWith('weir_post_')) return `cabi_post_${name.slice(10).replace(/_/g, '-')}`;
  if (name.startsWith('weir_x_')) return name.slice(7).replace(/_/g, '-');
  return undefined;
}

interface AscApi {
  main(argv: string[], options: Record<string, unknown>): Promise<{ error: Error | null }>;
  createMemoryStream(): { toString(): string };
}

async function loadAsc(): Promise<AscApi> {
  try {
    return (await import('assemblyscript/asc')).default as unknown as AscApi;
  } catch (err) {
    throw new PluginToolError('the AssemblyScript compiler is not installed: run `npm install --save-dev assemblyscript@^0.28` in the weir checkout', { cause: err });
  }
}

/** Compiles an AssemblyScript project to a core module with ABI export names. */
export async function compileAssemblyScript(dir: string): Promise<Uint8Array> {
  const asc = await loadAsc();
  const asconfig = readJson(join(dir, 'asconfig.json'));
  const configured = Array.isArray(asconfig?.['entries']) ? (asconfig['entries'] as unknown[]).filter((e): e is string => typeof e === 'string') : [];
  const sources = configured.length ? configured : ['assembly/index.ts'];
  for (const s of sources) if (!existsSync(join(dir, s))) throw new PluginToolError(`${join(dir, s)}: entry file not found (entries come from asconfig.json, default assembly/index.ts)`);
  // asc takes asconfig.json's entries itself; pass the default only when there are none.
  const entries = configured.length ? [] : sources;
  // Without the SDK, `abort` has nothing to report to: it just traps.
  const usesSdk = sources.some((s) => /sdk-assemblyscript/.test(readFileSync(join(dir, s), 'utf8')));
  const out: { binary?: Uint8Array } = {};
  const stderr = asc.createMemoryStream();
  const sdkFile = new RegExp(`(?:^|[\\\\/])node_modules[\\\\/]${SDK_PACKAGE.replace('/', '[\\\\/]')}[\\\\/](.*)$`);
  const { error } = await asc.main([
    ...entries,
    '--baseDir', dir,
    '--outFile', 'plugin.wasm',
    // minimal: no incremental-GC barriers and 40 % smaller; the SDK collects after each call.
    '--optimizeLevel', '3', '--shrinkLevel', '1',
    '--runtime', 'minimal',
    // Keeps the name section (no DWARF, no source map), so a trap's stack names functions.
    '--debug',
    '--use', usesSdk ? 'abort=weirAbort' : 'abort=',
    '--noColors',
  ], {
    stdout: asc.createMemoryStream(),
    stderr,
    readFile(name: string, baseDir: string): string | null {
      const p = resolve(baseDir, name);
      if (existsSync(p) && statSync(p).isFile()) return readFileSync(p, 'utf8');
      // `@weir/sdk-assemblyscript` resolves to this checkout's SDK unless the project has its own.
      const m = sdkFile.exec(p);
      if (m) {
        const q = join(SDK_AS_DIR, m[1]!);
        if (existsSync(q) && statSync(q).isFile()) return readFileSync(q, 'utf8');
      }
      return null;
    },
    writeFile(name: string, data: Uint8Array | string): void {
      if (name.endsWith('plugin.wasm') && typeof data !== 'string') out.binary = data;
    },
    listFiles(): string[] { return []; },
  });
  if (error || !out.binary) throw new PluginToolError(`asc failed: ${error?.message ?? 'no output'}\n${stderr.toString().trim()}`);
  return renameExports(out.binary, abiExportName);
}

interface RustModule { compileRust(dir: string, opts?: { log?: (line: string) => void }): Promise<Uint8Array> }

async function compileRustProject(dir: string, log: (line: string) => void): Promise<Uint8Array> {
  let mod: RustModule;
  try {
    // Loaded by URL so this file type-checks before rust.ts exists.
    mod = (await import(new URL('./rust.ts', import.meta.url).href)) as RustModule;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') throw new PluginToolError('Rust plugins are not supported by this weir build (host/src/plugin-tool/rust.ts is missing)', { cause: err });
    throw err;
  }
  return mod.compileRust(dir, { log });
}

const kib = (n: number): string => `${(n / 1024).toFixed(1)} KiB`;

/** Builds the plugin project in `dir`; see the file comment for the steps. */
export async function buildPlugin(dir: string, opts: BuildOptions = {}): Promise<BuildResult> {
  const log = opts.log ?? (() => {});
  const t0 = performance.now();
  const root = resolve(dir);
  if (!existsSync(root)) throw new PluginToolError(`${dir}: no such directory`);
  const lang = detectLang(root);
  const { name, out } = projectInfo(root, lang);
  log(`building ${name} (${lang === 'as' ? 'AssemblyScript' : 'Rust'}) in ${root}`);
  const core = lang === 'as' ? await compileAssemblyScript(root) : await compileRustProject(root, log);
  const t1 = performance.now();
  log(`  compiled     ${kib(core.length)} core module in ${Math.round(t1 - t0)} ms`);
  const component = await componentize(core);
  const t2 = performance.now();
  log(`  componentized in ${Math.round(t2 - t1)} ms`);
  await validateComponent(component);
  const t3 = performance.now();
  log(`  validated against weir:proxy/plugin in ${Math.round(t3 - t2)} ms`);
  const outFile = resolve(root, opts.out ?? out ?? join('build', `${name}.wasm`));
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, component);
  const total = performance.now() - t0;
  log(`wrote ${outFile} (${kib(component.length)}) in ${Math.round(total)} ms`);
  return { lang, name, outFile, size: component.length, coreSize: core.length, ms: { compile: t1 - t0, componentize: t2 - t1, validate: t3 - t2, total } };
}
