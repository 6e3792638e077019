/** The loader accepts the echo plugin and refuses components that do not match the world. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { isWeirError } from '../../host/src/errors.ts';
import { PLUGIN_WORLD } from '../../plugin-abi/generated/world.ts';
import { checkCoreModule, loadComponent } from '../../plugin-abi/src/loader/load-component.ts';
import { coreModuleInfo, coreModulesOf, sections } from '../../plugin-abi/src/loader/wasm-binary.ts';
import { WIT_SOURCE, buildEchoComponent, buildEchoCore, dummyComponent } from '../fixtures/plugins/build.ts';

/** Expects loadComponent to fail with `code` and a message matching every pattern. */
async function refused(bytes: Uint8Array, code: string, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(loadComponent(bytes), (err: unknown) => {
    assert.ok(isWeirError(err), String(err));
    assert.equal(err.code, code);
    for (const p of patterns) assert.match(err.message, p);
    return true;
  });
}

describe('loadComponent', () => {
  test('loads the echo plugin; the core module is the one we built, verbatim', async () => {
    const loaded = await loadComponent(await buildEchoComponent());
    assert.ok(loaded.core);
    assert.match(loaded.wit, /export on-request-headers: func\(ctx: context-id\) -> decision/);
    assert.deepStrictEqual([...loaded.hostFunctions].sort(), PLUGIN_WORLD.imports.filter((i) => !i.interface.includes('/crypto@')).flatMap((i) => i.funcs.map((f) => f.name)).sort());
    // jco new only appends a `producers` custom section; every other section is unchanged.
    const strip = (b: Uint8Array) => sections(b).sections.filter((s) => s.id !== 0).map((s) => Buffer.from(b.subarray(s.start, s.end)).toString('hex'));
    assert.deepStrictEqual(strip(loaded.coreBytes), strip(await buildEchoCore()));
  });

  test('the component also holds shim modules, which are not the main module', async () => {
    const cores = coreModulesOf(await buildEchoComponent());
    assert.ok(cores.length > 1);
    const withMemory = cores.filter((c) => coreModuleInfo(c).exports.some((e) => e.kind === 'memory'));
    assert.equal(withMemory.length, 1);
  });

  test('a stub component for the exact world loads (cm32p2 names)', async () => {
    const loaded = await loadComponent(await dummyComponent(WIT_SOURCE));
    assert.ok(loaded.info.exports.some((e) => e.name === 'cm32p2||on-request-headers'));
  });

  test('a component without on-log is refused, naming on-log', async () => {
    const wit = WIT_SOURCE.replace(/@since\(version = 0\.1\.0\)\s*export on-log: func[^;]*;/, '');
    assert.notEqual(wit, WIT_SOURCE);
    await refused(await dummyComponent(wit), 'WEIR_ERR_PLUGIN_WORLD_MISMATCH', /missing export on-log/, /missing core export .*on-log/);
  });

  test('a wrong signature is refused, naming the export and both signatures', async () => {
    const wit = WIT_SOURCE.replace('targets: list<target>) -> option<u32>;', 'targets: list<target>) -> option<u64>;');
    assert.notEqual(wit, WIT_SOURCE);
    await refused(await dummyComponent(wit), 'WEIR_ERR_PLUGIN_WORLD_MISMATCH',
      /export select-upstream has signature .*-> option<u64>, expected .*-> option<u32>/);
  });

  test('a changed parameter list is caught at the core level too', async () => {
    const wit = WIT_SOURCE.replace('export on-request-body: func(ctx: context-id, chunk: list<u8>, end: bool)', 'export on-request-body: func(ctx: context-id, chunk: list<u8>)');
    assert.notEqual(wit, WIT_SOURCE);
    await refused(await dummyComponent(wit), 'WEIR_ERR_PLUGIN_WORLD_MISMATCH', /export on-request-body has signature/, /core export for on-request-body is \(i64, i32, i32\) -> \(i32\), expected \(i64, i32, i32, i32\) -> \(i32\)/);
  });

  test('an import from another package is refused, naming it', async () => {
    const wit = WIT_SOURCE.replace('world plugin {', 'interface extra {\n  /// x\n  ping: func();\n}\n\n/// w\nworld plugin {\n  import extra;').replace(/^(@since\(version = 0\.1\.0\)\n)(world plugin)/m, '$2');
    // An extra weir:proxy interface is unknown to the host.
    await refused(await dummyComponent(wit), 'WEIR_ERR_PLUGIN_WORLD_MISMATCH', /unknown core import .*extra.*#ping/);
  });

  test('a v0.1 plugin (built with the v0.1 SDK) is refused with its own code and what to do', async () => {
    const v01 = readFileSync(new URL('../fixtures/plugins/v0.1/hello-v01.wasm', import.meta.url));
    await refused(v01, 'WEIR_ERR_PLUGIN_ABI_VERSION', /built for weir:proxy@0\.1\.0/, /runs weir:proxy@0\.2\.0/, /rebuild the plugin with the v0\.2 SDK/);
  });

  test('a core module or garbage is not a component', async () => {
    await refused(await buildEchoCore(), 'WEIR_ERR_PLUGIN_LOAD', /not a component/);
    await refused(new Uint8Array([1, 2, 3]), 'WEIR_ERR_PLUGIN_LOAD', /bad magic/);
  });
});

test('checkCoreModule names a bad post-return signature', () => {
  const problems = checkCoreModule({
    imports: [],
    exports: [
      { name: 'memory', kind: 'memory' },
      { name: 'cabi_realloc', kind: 'func', sig: { params: ['i32', 'i32', 'i32', 'i32'], results: ['i32'] } },
      ...PLUGIN_WORLD.exports.map((e) => ({ name: e.name, kind: 'func' as const, sig: { params: e.params, results: e.results } })),
      { name: 'cabi_post_describe', kind: 'func', sig: { params: [], results: [] } },
    ],
  }).problems;
  assert.deepStrictEqual(problems, ['post-return for describe is () -> (), expected (i32) -> ()']);
});
