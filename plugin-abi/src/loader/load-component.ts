/**
 * Loads a plugin component for direct core calls: checks it against the `plugin` world and
 * extracts the core module the codec calls.
 *
 * A component made by `jco new` from one core module embeds that module verbatim (component
 * section id 1), next to small shim modules wit-component adds to wire up imports that need
 * memory (an indirect-call table module and a fixup module). The main module is the one
 * that exports the memory; we compile it as-is and instantiate it ourselves with the
 * generated `hostImports`, which is exactly what the component's shims would have wired.
 *
 * The check has two levels:
 *  - WIT: the component's world (via wasm-tools' `componentWit`) must export every hook with
 *    the signature of `wit/weir.wit` (on-tick may be left out) and import only `weir:proxy`
 *    interfaces;
 *  - core: the main module must export each function with the core signature the codec
 *    calls, and may import only our host functions, with their core signatures.
 * Type definitions are compared by their flattening, not by name (wasm-tools prints names only).
 */
import { WeirError } from '../../../host/src/errors.ts';
import { PLUGIN_WORLD } from '../../generated/world.ts';
import { wasm, type WasmModule } from '../abi/wasm.ts';
import { coreModuleInfo, coreModulesOf, type CoreModuleInfo, type FuncSig } from './wasm-binary.ts';
import { componentWitIsolated } from './wit-reader.ts';

export interface LoadedComponent {
  /** The main core module, compiled; instantiate it with `hostImports` from the codec. */
  readonly core: WasmModule;
  /** Its bytes (for metering/instrumentation before compiling again). */
  readonly coreBytes: Uint8Array;
  /** Its imports and exports with core signatures. */
  readonly info: CoreModuleInfo;
  /** The component's world as WIT text (from wasm-tools). */
  readonly wit: string;
  /** Host functions the plugin imports (WIT names); the rest need no implementation. */
  readonly hostFunctions: readonly string[];
}

const sigText = (s: { params: readonly string[]; results: readonly string[] }): string => `(${s.params.join(', ')}) -> (${s.results.join(', ')})`;
const sameSig = (a: FuncSig, b: { params: readonly string[]; results: readonly string[] }): boolean => sigText(a) === sigText(b);

/** Parses the `world` block of wasm-tools' WIT output into imports and export signatures. */
export function parseWorldText(wit: string): { imports: string[]; exports: Map<string, string> } {
  const imports: string[] = [];
  const exports = new Map<string, string>();
  const start = wit.indexOf('world ');
  const body = wit.slice(wit.indexOf('{', start) + 1, wit.lastIndexOf('}'));
  for (const raw of body.split(';')) {
    const item = raw.replace(/\s+/g, ' ').trim();
    let m: RegExpExecArray | null;
    if ((m = /^import ([^:\s]+:[^\s;]+)$/.exec(item))) imports.push(m[1]!);
    else if ((m = /^import ([a-z0-9-]+): (.*)$/.exec(item))) imports.push(`${m[1]}: ${m[2]}`);
    else if ((m = /^export ([a-z0-9-]+): (.*)$/.exec(item))) exports.set(m[1]!, m[2]!);
    else if ((m = /^export (.+)$/.exec(item))) exports.set(m[1]!, 'interface');
  }
  return { imports, exports };
}

/** Problems that make `wit` not match the plugin world; empty when it matches. */
export function checkWorldWit(wit: string): string[] {
  const problems: string[] = [];
  const { imports, exports } = parseWorldText(wit);
  const pkg = PLUGIN_WORLD.package.replace(/@.*/, '');
  for (const e of PLUGIN_WORLD.exports) {
    const got = exports.get(e.name);
    if (got === undefined) {
      if (!e.optional) problems.push(`missing export ${e.name}: ${e.wit}`);
    }
    else if (got !== e.wit) problems.push(`export ${e.name} has signature ${got}, expected ${e.wit}`);
  }
  for (const name of exports.keys()) {
    if (!PLUGIN_WORLD.exports.some((e) => e.name === name)) problems.push(`unexpected export ${name}`);
  }
  for (const i of imports) {
    if (!i.startsWith(`${pkg}/`)) problems.push(`unsupported import ${i} (plugins may import only ${pkg} interfaces)`);
    else if (!i.endsWith(`@${PLUGIN_WORLD.package.replace(/.*@/, '')}`)) problems.push(`import ${i} has the wrong version, expected ${PLUGIN_WORLD.package}`);
  }
  return problems;
}

/** Problems with the main core module's ABI; empty when the codec can call it. */
export function checkCoreModule(info: CoreModuleInfo): { problems: string[]; hostFunctions: string[] } {
  const problems: string[] = [];
  const hostFunctions: string[] = [];
  const byName = new Map(info.exports.map((e) => [e.name, e]));
  const findExport = (names: readonly string[]) => names.map((n) => byName.get(n)).find((e) => e !== undefined);
  const memory = findExport(['cm32p2_memory', 'memory']);
  if (!memory || memory.kind !== 'memory') problems.push('core module exports no memory');
  const realloc = findExport(['cm32p2_realloc', 'cabi_realloc']);
  if (!realloc || !realloc.sig || !sameSig(realloc.sig, { params: ['i32', 'i32', 'i32', 'i32'], results: ['i32'] })) {
    problems.push('core module exports no cabi_realloc(i32, i32, i32, i32) -> i32');
  }
  for (const e of PLUGIN_WORLD.exports) {
    const got = findExport(e.coreNames);
    if (!got && e.optional) continue;
    if (!got || !got.sig) { problems.push(`missing core export ${e.coreNames.join(' or ')} for ${e.name}`); continue; }
    if (!sameSig(got.sig, e)) problems.push(`core export for ${e.name} is ${sigText(got.sig)}, expected ${sigText(e)}`);
    const post = findExport(e.postNames);
    const postSig = { params: e.results.length ? ['i32'] : [], results: [] };
    if (post && (!post.sig || !sameSig(post.sig, postSig))) problems.push(`post-return for ${e.name} is ${post.sig ? sigText(post.sig) : post.kind}, expected ${sigText(postSig)}`);
  }
  for (const imp of info.imports) {
    const iface = PLUGIN_WORLD.imports.find((i) => i.coreModules.includes(imp.module));
    const fn = iface?.funcs.find((f) => f.name === imp.name);
    if (!iface || !fn || imp.kind !== 'func' || !imp.sig) { problems.push(`unknown core import ${imp.module}#${imp.name}`); continue; }
    if (!sameSig(imp.sig, fn)) problems.push(`core import ${imp.name} is ${sigText(imp.sig)}, expected ${sigText(fn)}`);
    hostFunctions.push(fn.name);
  }
  return { problems, hostFunctions };
}

/** The `weir:proxy` versions a component's WIT imports and uses (`0.1.0`, …). */
export function abiVersions(wit: string): string[] {
  const pkg = PLUGIN_WORLD.package.replace(/@.*/, '');
  const found = new Set<string>();
  for (const m of wit.matchAll(/\b([a-z][a-z0-9-]*:[a-z][a-z0-9-]*)\/[a-z0-9-]+@(\d+\.\d+\.\d+)/g)) if (m[1] === pkg) found.add(m[2]!);
  return [...found];
}

/**
 * A component built for another version of the ABI is refused with its own code, before the
 * world check (whose list of differences would not tell the author what to do). Weir keeps no
 * adapter for v0.1: its hooks received the whole head, which is what 0.2 stopped doing.
 */
export function checkAbiVersion(wit: string): void {
  const ours = PLUGIN_WORLD.package.replace(/.*@/, '');
  const other = abiVersions(wit).find((v) => v !== ours);
  if (other === undefined) return;
  throw new WeirError('WEIR_ERR_PLUGIN_ABI_VERSION', `built for ${PLUGIN_WORLD.package.replace(/@.*/, '')}@${other}; this Weir runs ${PLUGIN_WORLD.package}: rebuild the plugin with the v${ours.replace(/\.0$/, '')} SDK (weir plugin build)`, { detail: { version: other, expected: ours } });
}

/**
 * Checks a component against the plugin world and returns its compiled main core module.
 * Throws WEIR_ERR_PLUGIN_ABI_VERSION for a component of another ABI version,
 * WEIR_ERR_PLUGIN_WORLD_MISMATCH naming every mismatch, or WEIR_ERR_PLUGIN_LOAD when the bytes
 * are not a loadable component.
 */
export async function loadComponent(bytes: Uint8Array): Promise<LoadedComponent> {
  let cores: Uint8Array[];
  let wit: string;
  try {
    cores = coreModulesOf(bytes);
    // In a worker thread that exits afterwards: wasm-tools is large and only needed at load time.
    wit = await componentWitIsolated(bytes);
  } catch (err) {
    throw new WeirError('WEIR_ERR_PLUGIN_LOAD', `not a valid component: ${(err as Error).message}`, { cause: err });
  }
  checkAbiVersion(wit);
  const problems = checkWorldWit(wit);
  const mains = cores.map((b) => ({ b, info: coreModuleInfo(b) }))
    .filter((m) => m.info.exports.some((e) => e.kind === 'memory' && (e.name === 'memory' || e.name === 'cm32p2_memory')));
  if (mains.length !== 1) problems.push(`expected one core module exporting memory, found ${mains.length}`);
  let hostFunctions: string[] = [];
  if (mains.length === 1) {
    const core = checkCoreModule(mains[0]!.info);
    problems.push(...core.problems);
    hostFunctions = core.hostFunctions;
  }
  if (problems.length) {
    throw new WeirError('WEIR_ERR_PLUGIN_WORLD_MISMATCH', `component does not match ${PLUGIN_WORLD.package} world ${PLUGIN_WORLD.world}: ${problems.join('; ')}`, { detail: { problems } });
  }
  const main = mains[0]!;
  let core: WasmModule;
  try {
    core = await wasm.compile(main.b);
  } catch (err) {
    throw new WeirError('WEIR_ERR_PLUGIN_LOAD', `core module does not compile: ${(err as Error).message}`, { cause: err });
  }
  return { core, coreBytes: main.b, info: main.info, wit, hostFunctions };
}
