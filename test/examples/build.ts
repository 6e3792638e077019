/**
 * Builds example and conformance plugin projects once per test process (Rust takes seconds),
 * into a temp dir so the source tree stays clean. Rust crates share one cargo target dir
 * under the OS temp dir, so the SDK is compiled once and reruns are incremental.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPlugin } from '../../host/src/plugin-tool/build.ts';
import { PluginTester, loadCaseFile } from '../../plugin-abi/src/harness/cases.ts';
import type { Weir } from '../../host/src/weir.ts';
import { startWeirWith } from '../helpers/weir.ts';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const EXAMPLES = join(ROOT, 'examples');
export const LANGS = ['rust', 'as'] as const;
export type Lang = (typeof LANGS)[number];

const out = mkdtempSync(join(tmpdir(), 'weir-examples-'));
process.env['CARGO_TARGET_DIR'] ??= join(tmpdir(), 'weir-examples-cargo-target');

const built = new Map<string, Promise<string>>();
let queue: Promise<unknown> = Promise.resolve();

/** The component built from the project in `dir` (absolute or relative to the repo root). */
export function buildOnce(dir: string): Promise<string> {
  const abs = resolve(ROOT, dir);
  let p = built.get(abs);
  if (!p) {
    // One build at a time: cargo locks its target dir anyway, and the box has two cores.
    const file = join(out, `${built.size}-${abs.split('/').slice(-2).join('-')}.wasm`);
    p = queue.then(async () => (await buildPlugin(abs, { out: file })).outFile);
    queue = p.catch(() => {});
    built.set(abs, p);
  }
  return p;
}

/** examples/<policy>/<lang> built. */
export function example(policy: string, lang: Lang): Promise<string> {
  return buildOnce(join(EXAMPLES, policy, lang));
}

/** Runs a case file against a component; returns the failures as readable lines (empty: all passed). */
export async function caseFailures(wasm: string, casesFile: string): Promise<{ count: number; failures: string[] }> {
  const tester = new PluginTester(wasm);
  try {
    const results = await tester.run(await loadCaseFile(casesFile));
    return { count: results.length, failures: results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.problems.join('; ')}`) };
  } finally {
    tester.close();
  }
}

/**
 * Starts Weir on examples/<policy>/weir.kdl as shipped, with only what a test must change:
 * the listener on port 0, the origins' ports, and the plugin path of `lang`'s build.
 */
export async function startExample(policy: string, lang: Lang, origins: Record<string, number>): Promise<{ weir: Weir; url: string }> {
  let kdl = readFileSync(join(EXAMPLES, policy, 'weir.kdl'), 'utf8');
  const wasm = await example(policy, lang);
  const shipped = `path "rust/build/${policy}.wasm"`;
  if (!kdl.includes(shipped)) throw new Error(`${policy}/weir.kdl: expected ${shipped}`);
  kdl = kdl.replace(shipped, `path ${JSON.stringify(wasm)}`).replace('"127.0.0.1:8080"', '"127.0.0.1:0"');
  for (const [address, port] of Object.entries(origins)) {
    if (!kdl.includes(`"${address}"`)) throw new Error(`${policy}/weir.kdl: no target ${address}`);
    kdl = kdl.replaceAll(`"${address}"`, `"127.0.0.1:${port}"`);
  }
  const { weir, url } = await startWeirWith(kdl);
  return { weir, url };
}
