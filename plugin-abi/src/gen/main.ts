/**
 * Regenerates `plugin-abi/generated/` from `wit/weir.wit`:
 *   node_modules/.bin/node plugin-abi/src/gen/main.ts
 * test/plugin-abi/generated.test.ts fails when the committed output is stale.
 */
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { emit } from './emit.ts';
import { layoutJson } from './layout-json.ts';
import { parseWit } from './wit.ts';
import { worldTs } from './world-ts.ts';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const WIT_PATH = `${ROOT}wit/weir.wit`;
export const OUT_DIR = `${ROOT}plugin-abi/generated/`;

/**
 * Host functions that may complete asynchronously (suspend the guest through JSPI): the
 * callout, the store calls (a remote store answers with promises) and password-verify
 * (bcrypt and SHA-crypt take milliseconds by design; the proxy thread does not wait).
 */
export const ASYNC_IMPORTS = ['http-callout', 'counter-add', 'token-bucket-take', 'kv-get', 'kv-cas', 'password-verify'];

/** Every generated file, by name, from the WIT source. */
export function generate(witSource: string): Record<string, string> {
  const pkg = parseWit(witSource);
  const world = pkg.worlds.find((w) => w.name === 'plugin');
  if (!world) throw new Error('wit: no world named plugin');
  const out = emit(pkg, world, { asyncImports: ASYNC_IMPORTS });
  return { 'types.ts': out.types, 'codec.ts': out.codec, 'world.ts': worldTs(pkg, world), 'layout.json': layoutJson(pkg, world) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = generate(readFileSync(WIT_PATH, 'utf8'));
  mkdirSync(OUT_DIR, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(OUT_DIR + name, text);
  console.log(`wrote ${Object.keys(files).map((n) => `plugin-abi/generated/${n}`).join(', ')}`);
}
