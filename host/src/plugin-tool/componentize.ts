/**
 * Core module → component: embeds the `plugin` world of wit/weir.wit and runs wit-component
 * (jco's wasm-tools), then loads the result with the runtime's own loader so a build never
 * produces a component the proxy would refuse.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadComponent, type LoadedComponent } from '../../../plugin-abi/src/loader/load-component.ts';
import { PLUGIN_WORLD } from '../../../plugin-abi/generated/world.ts';
import { coreModuleInfo } from '../../../plugin-abi/src/loader/wasm-binary.ts';

export const WIT_PATH = fileURLToPath(new URL('../../../wit/weir.wit', import.meta.url));

/** A build step failed; the message is meant for the plugin author. */
export class PluginToolError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PluginToolError';
  }
}

/** Exports of the plugin world the core module lacks (names as the WIT spells them), optional ones included. */
function absentExports(core: Uint8Array): typeof PLUGIN_WORLD.exports {
  const names = new Set(coreModuleInfo(core).exports.map((e) => e.name));
  return PLUGIN_WORLD.exports.filter((e) => !e.coreNames.some((n) => names.has(n)));
}

/** Required exports of the plugin world the core module lacks (names as the WIT spells them). */
export function missingExports(core: Uint8Array): string[] {
  return absentExports(core).filter((e) => !e.optional).map((e) => e.name);
}

/**
 * The WIT to embed for `core`: the world without the optional exports the module leaves out
 * (on-tick), since wit-component requires every export of the world it embeds.
 */
export function witForCore(core: Uint8Array, witSource: string): string {
  let wit = witSource;
  for (const e of absentExports(core)) {
    if (!e.optional) continue;
    // The export with its doc comment and @since gate.
    const item = new RegExp(`(?:[ \\t]*///[^\\n]*\\n)*(?:[ \\t]*@since\\([^)]*\\)\\n)?[ \\t]*export ${e.name}: [^;]*;\\n`);
    wit = wit.replace(item, '');
  }
  return wit;
}

/** Wraps a core module that follows the canonical ABI into a `weir:proxy/plugin` component. */
export async function componentize(core: Uint8Array, witSource = readFileSync(WIT_PATH, 'utf8')): Promise<Uint8Array> {
  // wit-component's own message for this is a long chain; name the missing hooks plainly.
  const missing = missingExports(core);
  if (missing.length) throw new PluginToolError(`core module does not export ${missing.map((m) => `\`${m}\``).join(', ')} required by ${PLUGIN_WORLD.package} world ${PLUGIN_WORLD.world}`);
  const { componentEmbed, componentNew } = await import('@bytecodealliance/jco-transpile/wasm-tools');
  try {
    const embedded = await componentEmbed({ binary: core, witSource: witForCore(core, witSource), world: PLUGIN_WORLD.world, stringEncoding: 'utf8' });
    return await componentNew(embedded);
  } catch (err) {
    throw new PluginToolError(`cannot make a component: ${(err as Error).message ?? String(err)}`, { cause: err });
  }
}

/** Checks a component the way the proxy does at load time; throws the loader's message. */
export async function validateComponent(component: Uint8Array): Promise<LoadedComponent> {
  try {
    return await loadComponent(component);
  } catch (err) {
    throw new PluginToolError(`the component would be refused by the proxy: ${(err as Error).message}`, { cause: err });
  }
}
