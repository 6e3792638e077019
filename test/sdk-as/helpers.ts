/**
 * Builds AssemblyScript test plugins with `weir plugin build` (into temp dirs) and runs them
 * through the generated codec with the recording host of the plugin-abi tests.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bindCoreInstance, hostImports, type CoreInstance } from '../../plugin-abi/generated/codec.ts';
import { GuestMemory } from '../../plugin-abi/src/abi/guest-memory.ts';
import { wasm, type WasmMemory } from '../../plugin-abi/src/abi/wasm.ts';
import { loadComponent, type LoadedComponent } from '../../plugin-abi/src/loader/load-component.ts';
import { buildPlugin, type BuildResult } from '../../host/src/plugin-tool/build.ts';
import { RecordingHost } from '../plugin-abi/harness.ts';
import { withHost } from '../plugin-abi/with-head.ts';

export const ECHO_SDK_DIR = fileURLToPath(new URL('../fixtures/as/echo-sdk/', import.meta.url));

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

const builds = new Map<string, Promise<{ result: BuildResult; component: Uint8Array; loaded: LoadedComponent }>>();

/** Builds a plugin project once per process; returns the component and its loaded form. */
export function buildOnce(dir: string): Promise<{ result: BuildResult; component: Uint8Array; loaded: LoadedComponent }> {
  let p = builds.get(dir);
  if (!p) {
    p = (async () => {
      const out = join(tempDir('weir-sdk-as-'), 'plugin.wasm');
      const result = await buildPlugin(dir, { out });
      const component = readFileSync(result.outFile);
      return { result, component, loaded: await loadComponent(component) };
    })();
    builds.set(dir, p);
  }
  return p;
}

export interface Running {
  inst: CoreInstance;
  host: RecordingHost;
  /** The guest's linear memory, to check it stays bounded. */
  memory: WasmMemory;
}

/** A fresh instance of a built plugin with a fresh recording host. */
export async function instantiate(loaded: LoadedComponent, host = new RecordingHost()): Promise<Running> {
  const mem = new GuestMemory();
  const instance = await wasm.instantiate(loaded.core, hostImports(host, mem));
  const inst = withHost(bindCoreInstance(mem, instance.exports), host);
  return { inst, host, memory: instance.exports['memory'] as WasmMemory };
}

export { RecordingHost };
