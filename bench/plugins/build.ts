/** Builds the benchmark's header plugins (bench/plugins/NAME → build/NAME.wasm) if missing. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPlugin } from '../../host/src/plugin-tool/build.ts';

const HERE = fileURLToPath(new URL('.', import.meta.url));

export async function buildBenchPlugins(): Promise<void> {
  for (const name of ['req-header', 'resp-header']) {
    const dir = join(HERE, name);
    if (!existsSync(join(dir, 'build', `${name}.wasm`))) await buildPlugin(dir, { log: () => {} });
  }
}
