/**
 * The compiled-module cache is bounded: each hot swap brings a new build, and before the
 * bound every build ever loaded stayed compiled for the life of the process (found by the
 * plugin-binary fuzzer in test/fuzz, whose memory grew with every build it loaded).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { loadConfigText } from '../../host/src/config/index.ts';
import { createLogger } from '../../host/src/observability/logger.ts';
import { WasmPlugin, compileCacheSize } from '../../plugin-abi/src/runtime/plugin.ts';
import { PluginRuntime } from '../../plugin-abi/src/runtime/runtime.ts';
import { buildEchoComponent } from '../fixtures/plugins/build.ts';
import { tmpDir } from '../helpers/weir.ts';

/** The component with one more custom section: a distinct build (new sha256), same code. */
function build(component: Uint8Array, n: number): Buffer {
  const name = Buffer.from('build');
  const payload = Buffer.from(String(n).padStart(3, '0'));
  return Buffer.concat([component, Buffer.from([0, 1 + name.length + payload.length, name.length]), name, payload]);
}

test('loading 40 distinct builds keeps at most 32 compiled modules; loading one again compiles nothing new', async () => {
  const component = await buildEchoComponent();
  const dir = tmpDir('weir-compile-cache-');
  const logger = createLogger({ level: 'silent', format: 'json', sync: true });
  const runtime = new PluginRuntime({ logger, registry: new Registry() });
  try {
    const load = async (n: number): Promise<void> => {
      const file = join(dir, `p${n}.wasm`);
      writeFileSync(file, build(component, n));
      const r = await loadConfigText(`schema-version "1.0"\nplugins { plugin "p" { path "${file}"; } }\n`, join(dir, 'weir.kdl'));
      assert.ok(r.ok);
      await WasmPlugin.load(r.config.plugins.get('p')!, { services: runtime.services, metrics: runtime.metrics, logger });
    };
    const before = compileCacheSize();
    for (let n = 0; n < 40; n++) await load(n);
    assert.ok(compileCacheSize() <= 32, `${compileCacheSize()} modules kept`);
    assert.ok(compileCacheSize() > before, 'builds were cached');
    const size = compileCacheSize();
    await load(39);
    assert.equal(compileCacheSize(), size);
  } finally {
    runtime.close();
  }
});
