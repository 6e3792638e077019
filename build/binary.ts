/**
 * `npm run build:binary` → dist/weir, a single executable (Node SEA) that runs with no
 * node_modules beside it.
 *
 *   esbuild: host/bin/weir.ts → weir.cjs (main), each worker-thread entry (THREADS) →
 *            its own .cjs, piscina's thread entry → piscina-worker.cjs
 *   assets:  those workers, wasm-tools' core modules and the WASI shim's I/O worker (the
 *            vendored code opens them by path), the geo database, plugins/* /build/*.wasm
 *   node --experimental-sea-config → blob; copy of node_modules/node/bin/node; postject
 *
 * At start the binary extracts what must be a file (host/src/assets.ts).
 * `--if-stale` skips the build when dist/weir is newer than every input.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { ASSET_MANIFEST, ASSETS, type AssetManifest } from '../host/src/assets.ts';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const BINARY = join(ROOT, 'dist', 'weir');
/** Intermediate files, kept for inspection; staged per process so concurrent builds do not mix. */
const SEA_DIR = join(ROOT, 'dist', 'sea');
const OUT = join(ROOT, 'dist', `.sea-${process.pid}`);
const NODE = join(ROOT, 'node_modules', 'node', 'bin', 'node');
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const require = createRequire(import.meta.url);

/** Vendored files that third-party code opens relative to its own module (import.meta.url). */
const JCO_VENDOR = join(dirname(require.resolve('@bytecodealliance/jco-transpile/wasm-tools')), '..', 'vendor');
const VENDORED = {
  'wasm-tools.core.wasm': join(JCO_VENDOR, 'wasm-tools.core.wasm'),
  'wasm-tools.core2.wasm': join(JCO_VENDOR, 'wasm-tools.core2.wasm'),
  'worker-thread.bundle.js': join(dirname(require.resolve('@bytecodealliance/preview2-shim/io')), '..', 'io', 'worker-thread.bundle.js'),
};

/**
 * Modules that run as their own worker threads: each becomes a bundle extracted at start
 * (host/src/assets.ts `extractedFile(asset)` gives its path in the binary).
 */
const THREADS: Array<{ entry: string; asset: string }> = [
  { entry: 'plugin-abi/src/runtime/worker.ts', asset: ASSETS.pluginWorker },
  { entry: 'host/src/cluster/thread.ts', asset: ASSETS.proxyThread },
  { entry: 'plugin-abi/src/loader/wit-worker.ts', asset: ASSETS.witWorker },
];

/** Source edits that only make sense in the bundle; each must match, or the build fails. */
const PATCHES: Array<{ file: RegExp; from: string; to: string; why: string }> = [
  {
    file: /piscina[\\/]dist[\\/]index\.js$/,
    from: "(0, node_path_1.resolve)(__dirname, 'worker.js')",
    to: "(globalThis.__weirPiscinaWorker || (0, node_path_1.resolve)(__dirname, 'worker.js'))",
    why: 'piscina starts its thread entry from next to itself; in the binary that is the extracted copy',
  },
  {
    file: /host[\\/]src[\\/]store[\\/]memcached\.ts$/,
    from: "createRequire(import.meta.url)('memjs')",
    to: "require('memjs')",
    why: 'a require esbuild can see, so memjs is bundled',
  },
];

const patchPlugin: esbuild.Plugin = {
  name: 'weir-patches',
  setup(b) {
    for (const p of PATCHES) {
      b.onLoad({ filter: p.file }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        if (!text.includes(p.from)) throw new Error(`build/binary.ts: ${relative(ROOT, args.path)} no longer contains ${JSON.stringify(p.from)} (${p.why})`);
        return { contents: text.replace(p.from, p.to), loader: args.path.endsWith('.ts') ? 'ts' : 'js' };
      });
    }
  },
};

/** Every bundle starts by saying what it is; assets.ts reads this. */
const banner = (kind: 'main' | 'worker'): string =>
  `globalThis.__weirBundle = { kind: ${JSON.stringify(kind)}, file: __filename };\n` +
  `globalThis.__weirMetaUrl = require('node:url').pathToFileURL(__filename).href;`;

async function bundle(entry: string, out: string, kind: 'main' | 'worker' | 'plain'): Promise<void> {
  await esbuild.build({
    entryPoints: [join(ROOT, entry)],
    outfile: join(OUT, out),
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    logLevel: 'error',
    // assemblyscript (weir plugin build) and piscina's optional native module stay out.
    external: ['assemblyscript', 'assemblyscript/*', '@napi-rs/nice'],
    define: kind === 'plain' ? {} : { 'import.meta.url': 'globalThis.__weirMetaUrl' },
    banner: kind === 'plain' ? {} : { js: banner(kind) },
    plugins: [patchPlugin],
  });
}

function hasStrip(): boolean {
  try {
    execFileSync('strip', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function pluginFiles(): string[] {
  const dir = join(ROOT, 'plugins');
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const build = join(dir, name, 'build');
    if (!existsSync(build)) continue;
    for (const f of readdirSync(build)) if (f.endsWith('.wasm')) out.push(join('plugins', name, 'build', f));
  }
  return out.sort();
}

function newest(path: string): number {
  if (!existsSync(path)) return 0;
  const s = statSync(path);
  if (!s.isDirectory()) return s.mtimeMs;
  let m = s.mtimeMs;
  for (const e of readdirSync(path)) if (e !== 'node_modules' && e !== 'target') m = Math.max(m, newest(join(path, e)));
  return m;
}

/** Whether dist/weir is newer than the sources, the lock file, the build script and the plugins. */
export function binaryUpToDate(): boolean {
  if (!existsSync(BINARY)) return false;
  const inputs = ['host', 'plugin-abi', 'wit', 'build', 'plugins', 'package.json', 'package-lock.json'].map((p) => newest(join(ROOT, p)));
  return statSync(BINARY).mtimeMs > Math.max(...inputs);
}

export async function buildBinary(log: (line: string) => void = () => {}): Promise<string> {
  const t0 = performance.now();
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  try {
    return await build(t0, log);
  } finally {
    rmSync(SEA_DIR, { recursive: true, force: true });
    if (existsSync(OUT)) renameSync(OUT, SEA_DIR);
  }
}

async function build(t0: number, log: (line: string) => void): Promise<string> {
  await Promise.all([
    bundle('host/bin/weir.ts', 'weir.cjs', 'main'),
    ...THREADS.map((t) => bundle(t.entry, t.asset, 'worker')),
    bundle('node_modules/piscina/dist/worker.js', ASSETS.piscinaWorker, 'plain'),
  ]);
  log(`bundled in ${Math.round(performance.now() - t0)} ms`);

  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const plugins = pluginFiles();
  const assets: Record<string, string> = {
    ...Object.fromEntries(THREADS.map((t) => [t.asset, join(OUT, t.asset)])),
    [ASSETS.piscinaWorker]: join(OUT, ASSETS.piscinaWorker),
    // Lets the WASI shim's ESM worker load as ESM beside the .cjs bundles.
    'package.json': join(OUT, 'assets-package.json'),
    ...VENDORED,
    [ASSETS.geoDatabase]: require.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb'),
    ...Object.fromEntries(plugins.map((p) => [p.replace(/[\\/]build[\\/]/, '/').replaceAll('\\', '/'), join(ROOT, p)])),
  };
  writeFileSync(assets['package.json']!, '{ "type": "module" }\n');
  const manifest: AssetManifest = {
    version: pkg.version,
    extract: [...THREADS.map((t) => t.asset), ASSETS.piscinaWorker, 'package.json', ...Object.keys(VENDORED)],
    plugins: Object.keys(assets).filter((k) => k.startsWith('plugins/')),
  };
  const manifestPath = join(OUT, ASSET_MANIFEST);
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  assets[ASSET_MANIFEST] = manifestPath;

  const template = JSON.parse(readFileSync(join(ROOT, 'build', 'sea-config.json'), 'utf8')) as Record<string, unknown>;
  const config = { ...template, main: join(OUT, 'weir.cjs'), output: join(OUT, 'sea-prep.blob'), assets };
  const configPath = join(OUT, 'sea-config.json');
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  execFileSync(NODE, ['--experimental-sea-config', configPath], { cwd: ROOT, stdio: 'pipe' });
  log(`blob ${(statSync(config.output).size / 2 ** 20).toFixed(1)} MiB (${plugins.length} first-party plugins)`);

  // Write next to the target and rename, so a running dist/weir is never half-written.
  const tmp = `${BINARY}.${process.pid}.tmp`;
  copyFileSync(NODE, tmp);
  chmodSync(tmp, 0o755);
  // The npm node binary carries debug symbols (≈18 MiB); the binary runs the same without them.
  if (process.env['WEIR_NO_STRIP'] !== '1' && hasStrip()) execFileSync('strip', [tmp]);
  const { inject } = require('postject') as { inject(file: string, name: string, data: Buffer, opts: { sentinelFuse: string; overwrite?: boolean }): Promise<void> };
  // postject (LIEF) warns about the unnamed .note sections of node's ELF; harmless, so silenced.
  const warn = console.warn;
  console.warn = () => {};
  try {
    await inject(tmp, 'NODE_SEA_BLOB', readFileSync(config.output), { sentinelFuse: FUSE });
  } finally {
    console.warn = warn;
  }
  renameSync(tmp, BINARY);
  log(`dist/weir ${(statSync(BINARY).size / 2 ** 20).toFixed(1)} MiB in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return BINARY;
}

if (import.meta.main) {
  if (process.argv.includes('--if-stale') && binaryUpToDate()) {
    process.stdout.write('dist/weir is up to date\n');
  } else {
    await buildBinary((line) => process.stdout.write(`${line}\n`));
  }
}
