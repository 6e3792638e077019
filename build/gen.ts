/**
 * Every generator of the repository, in dependency order, as one command:
 *   npm run gen        (node build/gen.ts)
 * The ABI codec and layout.json come first: both SDK generators lay out their types by that
 * layout.json. `--check` writes nothing and exits 1 listing the stale files;
 * test/structure/gen.test.ts runs the same check.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generate as generateAbi, OUT_DIR as ABI_DIR } from '../plugin-abi/src/gen/main.ts';
import { generate as generateAs, OUT_DIR as AS_DIR } from '../sdk-assemblyscript/gen/gen-as.ts';
import { generateRust, OUT_PATH as RUST_PATH } from '../sdk-rust-guest/gen/gen-rust.ts';
import { DOCS_PATH as CONFIG_DOCS, generateDocs } from '../host/src/config/gen-docs.ts';
import { renderErrorsDoc } from '../host/src/errors-doc.ts';
import { METRICS_DOC, renderMetricsDoc } from './metrics-doc.ts';
import { SENTINEL_DOCS_PATH, generateSentinelDocs } from '../host/src/config/gen-sentinel.ts';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** One generator: its name and the files (absolute path → text) it makes. */
export interface Generator {
  readonly name: string;
  readonly run: (wit: string) => Record<string, string>;
}

const under = (dir: string, files: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(files).map(([n, t]) => [dir + n, t]));

/** The generators in the order they must run. */
export const GENERATORS: readonly Generator[] = [
  { name: 'plugin ABI codec + layout.json (plugin-abi/src/gen)', run: (wit) => under(ABI_DIR, generateAbi(wit)) },
  { name: 'AssemblyScript SDK bindings (sdk-assemblyscript/gen)', run: (wit) => under(AS_DIR, generateAs(wit)) },
  // From the layout.json the first step makes (fresh, so --check needs nothing written).
  { name: 'Rust SDK bindings (sdk-rust-guest/gen)', run: (wit) => ({ [RUST_PATH]: generateRust(wit, generateAbi(wit)['layout.json']!) }) },
  { name: 'docs/configuration.md (host/src/config/gen-docs.ts)', run: () => ({ [CONFIG_DOCS]: generateDocs() }) },
  { name: 'docs/sentinel.md (host/src/config/gen-sentinel.ts)', run: () => ({ [SENTINEL_DOCS_PATH]: generateSentinelDocs() }) },
  { name: 'docs/errors.md (host/src/errors-doc.ts)', run: () => ({ [`${ROOT}docs/errors.md`]: renderErrorsDoc() }) },
  { name: 'docs/metrics.md (build/metrics-doc.ts)', run: () => ({ [`${ROOT}${METRICS_DOC}`]: renderMetricsDoc() }) },
];

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Runs every generator in order. With `write`, each step's files are written before the next
 * step runs; without, nothing is written. Returns the repository-relative paths whose
 * committed text differed from the generated one.
 */
export function runGenerators(write: boolean): string[] {
  const wit = readFileSync(`${ROOT}wit/weir.wit`, 'utf8');
  const stale: string[] = [];
  for (const g of GENERATORS) {
    for (const [path, text] of Object.entries(g.run(wit))) {
      if (read(path) === text) continue;
      stale.push(path.slice(ROOT.length));
      if (write) {
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(path, text);
      }
    }
  }
  return stale;
}

if (import.meta.main) {
  const check = process.argv.includes('--check');
  const stale = runGenerators(!check);
  if (check && stale.length > 0) {
    console.error(`stale generated files (run npm run gen):\n  ${stale.join('\n  ')}`);
    process.exit(1);
  }
  console.log(stale.length === 0 ? 'all generated files were current' : `${check ? 'stale' : 'wrote'}: ${stale.join(', ')}`);
}
