/**
 * Files Weir needs at run time that are not code: the plugin worker, wasm-tools' core
 * modules, the default geo database, first-party plugin components.
 *
 * From the repository they are read where they are. In the single binary (`npm run
 * build:binary`) they are SEA assets: what must be a file (worker scripts, wasm the
 * vendored tools read by path, plugins the runtime watches) is extracted once per process
 * into a private temporary folder that is removed at exit; the rest is read from memory.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as sea from 'node:sea';

/** What the build embeds under the asset key `ASSET_MANIFEST` (see build/binary.ts). */
export interface AssetManifest {
  readonly version: string;
  /** Asset keys written to the extraction folder under the same relative path. */
  readonly extract: readonly string[];
  /** First-party plugins: asset keys `plugins/NAME/FILE.wasm`. */
  readonly plugins: readonly string[];
}

export const ASSET_MANIFEST = 'weir-assets.json';
/** Asset keys of the files the binary's bundles refer to by name. */
export const ASSETS = {
  pluginWorker: 'plugin-worker.cjs',
  piscinaWorker: 'piscina-worker.cjs',
  proxyThread: 'proxy-thread.cjs',
  witWorker: 'wit-worker.cjs',
  geoDatabase: 'geo-whois-asn-country.mmdb',
} as const;

const REPO = fileURLToPath(new URL('../../', import.meta.url));

/** Set by the banner of the binary's bundles (build/binary.ts). */
interface BundleGlobals {
  __weirBundle?: { kind: 'main' | 'worker'; file: string };
  __weirMetaUrl?: string;
  __weirPiscinaWorker?: string;
}
const g = globalThis as BundleGlobals;

let binary: boolean | undefined;
/** Whether this process is the single executable. */
export function isBinary(): boolean {
  binary ??= g.__weirBundle !== undefined && sea.isSea();
  return binary;
}

let extracted: string | undefined;

/**
 * In the binary's main thread: extracts what must be on disk (idempotent) and points the
 * bundled code's `import.meta.url` and piscina's worker at it. Returns the folder, or
 * undefined outside the binary. Worker threads find the folder as their own script's.
 */
export function prepareEmbeddedAssets(): string | undefined {
  if (!isBinary()) return undefined;
  if (extracted) return extracted;
  if (g.__weirBundle!.kind === 'worker') {
    // A thread started from the extracted folder: its siblings are the other assets.
    extracted = dirname(g.__weirBundle!.file);
    g.__weirPiscinaWorker = join(extracted, ASSETS.piscinaWorker);
    return extracted;
  }
  const manifest = JSON.parse(sea.getAsset(ASSET_MANIFEST, 'utf8')) as AssetManifest;
  const dir = mkdtempSync(join(tmpdir(), 'weir-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  for (const key of [...manifest.extract, ...manifest.plugins]) {
    const out = join(dir, key);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, new Uint8Array(sea.getAsset(key)));
  }
  // Vendored modules (wasm-tools, the WASI shim) open siblings relative to import.meta.url.
  g.__weirMetaUrl = pathToFileURL(join(dir, 'weir.cjs')).href;
  g.__weirPiscinaWorker = join(dir, ASSETS.piscinaWorker);
  return (extracted = dir);
}

/** An embedded file's bytes (binary only). */
export function embeddedAsset(key: string): Buffer {
  return Buffer.from(sea.getAsset(key));
}

/**
 * In the binary, the extracted path of an asset the build listed for extraction (e.g. a
 * worker thread's bundle, see THREADS in build/binary.ts); undefined outside the binary.
 */
export function extractedFile(key: string): string | undefined {
  const dir = prepareEmbeddedAssets();
  return dir ? join(dir, key) : undefined;
}

/** The plugin worker bundle piscina loads in the binary (outside it: the TS source, by default). */
export function pluginWorkerPath(): string | undefined {
  return extractedFile(ASSETS.pluginWorker);
}

/**
 * Path of a first-party plugin component: `plugins/NAME/build/FILE` in the repository,
 * the extracted copy in the binary. FILE defaults to NAME.wasm.
 */
export function firstPartyPluginPath(name: string, file = `${name}.wasm`): string {
  const dir = prepareEmbeddedAssets();
  return dir ? join(dir, 'plugins', name, file) : join(REPO, 'plugins', name, 'build', file);
}
