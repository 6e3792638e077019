/**
 * Builds the benchmark's header plugins (bench/plugins/NAME → build/NAME.wasm) when missing
 * or stale, and the plugin `weir plugin new --lang as` scaffolds, made fresh each run
 * (bench/results/scaffold-as/build/scaffold-as.wasm), so its row measures today's scaffold.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPlugin } from '../../host/src/plugin-tool/build.ts';
import { newPlugin } from '../../host/src/plugin-tool/new.ts';
import { newest } from '../../plugins/build.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const SDK = fileURLToPath(new URL('../../sdk-assemblyscript', import.meta.url));


export async function buildBenchPlugins(): Promise<void> {
  const sdk = newest(SDK);
  for (const name of ['req-header', 'resp-header']) {
    const dir = join(HERE, name);
    const out = join(dir, 'build', `${name}.wasm`);
    if (!existsSync(out) || statSync(out).mtimeMs <= Math.max(sdk, newest(dir))) await buildPlugin(dir, { log: () => {} });
  }
  const results = join(HERE, '..', 'results');
  rmSync(join(results, 'scaffold-as'), { recursive: true, force: true });
  const { dir } = newPlugin('scaffold-as', { lang: 'as', cwd: results });
  await buildPlugin(dir, { log: () => {} });
}
