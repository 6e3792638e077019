/** Builds the benchmark's header plugins (bench/plugins/NAME → build/NAME.wasm) when missing or stale. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPlugin } from '../../host/src/plugin-tool/build.ts';
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
}
