/**
 * Plugin binaries mutated from a real component (examples/add-header built by our
 * AssemblyScript SDK): flipped, truncated, spliced bytes loaded the way `weir run`, reloads
 * and hot swaps load a plugin file (`WasmPlugin.load`: world check, metering, compile,
 * describe, configure). A load either succeeds or fails with a WEIR_ERR_PLUGIN_* error;
 * any other exception, a crash or a hang fails.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { loadConfigText } from '../../../host/src/config/index.ts';
import { isWeirError } from '../../../host/src/errors.ts';
import { createLogger } from '../../../host/src/observability/logger.ts';
import { WasmPlugin } from '../../../plugin-abi/src/runtime/plugin.ts';
import { PluginRuntime } from '../../../plugin-abi/src/runtime/runtime.ts';
import { buildOnce } from '../../examples/build.ts';
import { tmpDir } from '../../helpers/weir.ts';
import { applyEdits, edits } from '../mutate.ts';
import { fromJson, toJson, type FuzzEnv, type FuzzTarget } from '../target.ts';

interface BinaryEnv extends FuzzEnv {
  readonly seed: Buffer;
  readonly file: string;
  readonly runtime: PluginRuntime;
}

/** Bytes that mean something in a wasm/component binary: section ids, LEB128 lengths, the magic and layer. */
const WASM_TOKENS = ['\0asm', '\x0d\0\x01\0', '\x01\0\0\0', '\0', '\x01', '\x0a', '\x0b', '\x7f', '\x80\x80\x80\x80\x08', '\xff\xff\xff\xff\x0f', '\x41\x00', '\x20\x00', '\x10\x00', 'memory', 'cabi_realloc'];

type Edits = Parameters<typeof applyEdits>[1];

export const pluginBinary: FuzzTarget<Edits> = {
  name: 'plugin-binary',
  description: 'plugin components mutated from a real build (flips, truncations, section bytes, LEB128 lengths), loaded as `weir run` and hot swap load them',
  ext: 'json',
  setup: async (): Promise<BinaryEnv> => {
    const seed = readFileSync(await buildOnce('examples/add-header/as'));
    const dir = tmpDir('weir-fuzz-wasm-');
    const file = join(dir, 'plugin.wasm');
    const logger = createLogger({ level: 'silent', format: 'json', sync: true });
    const runtime = new PluginRuntime({ logger, registry: new Registry() });
    const gc = (globalThis as { gc?: () => void }).gc;
    return {
      seed, file, runtime,
      alive: async () => {},
      memory: () => (gc?.(), process.memoryUsage().rss),
      close: async () => runtime.close(),
    };
  },
  // The seed is only known after setup: inputs are edit lists, applied to it in check.
  arbitrary: edits(WASM_TOKENS, 4),
  check: async (fenv, list) => {
    const e = fenv as BinaryEnv;
    const bytes = list.length === 0 ? e.seed : applyEdits(e.seed, list);
    writeFileSync(e.file, bytes);
    const r = await loadConfigText(`schema-version "1.0"\nplugins { plugin "p" { path "${e.file}"; config { header "x-a" "b"; } } }\n`, join(e.file, '..', 'weir.kdl'));
    if (!r.ok) throw new Error(`the fuzz config did not load: ${r.diagnostics[0]?.message}`);
    try {
      await WasmPlugin.load(r.config.plugins.get('p')!, { services: e.runtime.services, metrics: e.runtime.metrics, logger: createLogger({ level: 'silent', format: 'json', sync: true }) });
    } catch (err) {
      if (!isWeirError(err) || !err.code.startsWith('WEIR_ERR_PLUGIN_')) throw new Error(`a mutated plugin failed to load without a WEIR_ERR_PLUGIN_* code: ${(err as Error).stack?.slice(0, 1000)}`);
    }
  },
  encode: toJson,
  decode: (b) => fromJson<Edits>(b),
};
