/**
 * `weir plugin new` and `weir plugin build`: a scaffolded AssemblyScript project builds into a
 * component the proxy loads and that behaves as its cases.json says; broken inputs get clear
 * errors (missing exports are named); a Rust scaffold points at the Rust SDK.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import {
  callConfigure, callDescribe,
} from '../../plugin-abi/generated/codec.ts';
import { loadComponent } from '../../plugin-abi/src/loader/load-component.ts';
import { renameExports } from '../../plugin-abi/src/loader/wasm-binary.ts';
import { buildPlugin, detectLang, projectInfo } from '../../host/src/plugin-tool/build.ts';
import { componentize, PluginToolError, validateComponent, WIT_PATH } from '../../host/src/plugin-tool/componentize.ts';
import { pluginCommand } from '../../host/src/plugin-tool/cli.ts';
import { newPlugin, SDK_RUST_DIR } from '../../host/src/plugin-tool/new.ts';
import { buildOnce, ECHO_SDK_DIR, instantiate, tempDir } from './helpers.ts';
import { onRequestHeaders } from '../plugin-abi/with-head.ts';

/** Runs `weir plugin ARGS…` in `cwd`, capturing output. */
async function weirPlugin(args: string[], cwd: string): Promise<{ out: string; err: string; code: number }> {
  let out = '';
  let err = '';
  const before = process.cwd();
  const code = process.exitCode;
  process.chdir(cwd);
  try {
    process.exitCode = 0;
    await pluginCommand({ out: (t) => { out += t; }, err: (t) => { err += t; } }).exitOverride().parseAsync(args, { from: 'user' });
    return { out, err, code: Number(process.exitCode ?? 0) };
  } finally {
    process.exitCode = code;
    process.chdir(before);
  }
}

describe('weir plugin new --lang as → weir plugin build', () => {
  test('the scaffold builds into a component that loads and passes its own cases', async () => {
    const parent = tempDir('weir-new-as-');
    const made = await weirPlugin(['new', 'hello-x', '--lang', 'as'], parent);
    assert.equal(made.code, 0, made.err);
    const dir = join(parent, 'hello-x');
    for (const f of ['package.json', 'asconfig.json', 'assembly/index.ts', 'cases.json', 'README.md']) assert.ok(existsSync(join(dir, f)), f);
    assert.match(made.out, /next: cd hello-x && weir plugin build/);
    // The devDependency points at this checkout's SDK.
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    assert.ok(existsSync(join(resolve(dir, pkg.devDependencies['@weir/sdk-assemblyscript']!.slice(5)), 'assembly/index.ts')));

    const t0 = performance.now();
    const built = await weirPlugin(['build', dir], parent);
    const ms = performance.now() - t0;
    assert.equal(built.code, 0, built.err);
    const outFile = join(dir, 'build/hello-x.wasm');
    assert.match(built.out, /compiled .* KiB core module/);
    assert.ok(built.out.includes(`wrote ${outFile} (`), built.out);
    const component = readFileSync(outFile);
    console.log(`# scaffold build: ${Math.round(ms)} ms, component ${component.length} bytes`);

    const loaded = await loadComponent(component);
    assert.deepEqual([...loaded.hostFunctions].sort(), ['log', 'request-path']);
    const { inst } = await instantiate(loaded);
    assert.equal(callDescribe(inst).name, 'hello-x');
    const cases = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8')) as { config: string };
    assert.equal(cases.config, 'greeting "hello"');
    assert.deepEqual(callConfigure(inst, [{ name: 'greeting', parent: undefined, args: [{ tag: 'text', val: 'hello' }], props: [] }]), { tag: 'ok', val: undefined });
    const head = { method: 'GET', scheme: 'http', authority: 'a', path: '/', query: '', headers: [{ name: 'accept', value: '*/*' }], clientAddress: '127.0.0.1', clientPort: 1, routeName: 'r', properties: [], httpVersion: '1.1' };
    assert.deepEqual(onRequestHeaders(inst, 1n, head), { tag: 'mutate', val: [{ tag: 'set-header', val: { name: 'x-hello-x', value: 'hello' } }] });
    assert.equal(onRequestHeaders(inst, 2n, { ...head, path: '/blocked' }).tag, 'respond');
    // …and `weir plugin test` runs the scaffold's own cases against it.
    const tested = await weirPlugin(['test', outFile, join(dir, 'cases.json')], parent);
    assert.equal(tested.code, 0, tested.out + tested.err);
    assert.match(tested.out, /^ok 1 - adds the greeting header$/m);
    assert.match(tested.out, /^2 passed, 0 failed$/m);
  });

  test('new refuses bad names and non-empty directories', async () => {
    const parent = tempDir('weir-new-bad-');
    assert.throws(() => newPlugin('Bad_Name', { lang: 'as', cwd: parent }), /invalid plugin name "Bad_Name"/);
    newPlugin('twice', { lang: 'as', cwd: parent });
    const r = await weirPlugin(['new', 'twice'], parent);
    assert.equal(r.code, 1);
    assert.match(r.err, /already exists and is not empty/);
  });
});

describe('sdk-assemblyscript/README.md', () => {
  test('the whole example builds, loads and refuses an unknown key', async () => {
    const readme = readFileSync(new URL('../../sdk-assemblyscript/README.md', import.meta.url), 'utf8');
    const code = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(code, 'README has a ts example');
    const dir = join(tempDir('weir-readme-'), 'api-key');
    mkdirSync(join(dir, 'assembly'), { recursive: true });
    writeFileSync(join(dir, 'assembly/index.ts'), code);
    const r = await buildPlugin(dir);
    const { inst, host } = await instantiate(await loadComponent(readFileSync(r.outFile)));
    const text = (val: string) => ({ tag: 'text' as const, val });
    assert.deepEqual(callConfigure(inst, [{ name: 'keys', parent: undefined, args: [text('k1'), text('k2')], props: [] }]), { tag: 'ok', val: undefined });
    const head = { method: 'GET', scheme: 'http', authority: 'a', path: '/', query: '', headers: [{ name: 'x-api-key', value: 'k2' }], clientAddress: '127.0.0.1', clientPort: 1, routeName: 'r', properties: [], httpVersion: '1.1' };
    assert.deepEqual(onRequestHeaders(inst, 1n, head), { tag: 'mutate', val: [{ tag: 'remove-header', val: 'x-api-key' }, { tag: 'set-property', val: { key: 'auth.subject', value: 'k2' } }] });
    assert.equal(onRequestHeaders(inst, 2n, { ...head, headers: [] }).tag, 'respond');
    assert.deepEqual(host.calls.at(-1), ['recordMetric', 14, 1, ['unknown']]);
    assert.deepEqual(callConfigure((await instantiate(await loadComponent(readFileSync(r.outFile)))).inst, []), { tag: 'err', val: { message: 'keys: at least one key is needed', node: undefined } });
  });
});

describe('weir plugin build: errors', () => {
  test('a directory that is no plugin project', async () => {
    const dir = tempDir('weir-empty-');
    assert.throws(() => detectLang(dir), /not a plugin project \(expected asconfig.json or assembly\/ for AssemblyScript, Cargo.toml for Rust\)/);
    const r = await weirPlugin(['build', dir], dir);
    assert.equal(r.code, 1);
    assert.match(r.err, /^error: .*not a plugin project/);
  });

  test('AssemblyScript compile errors are shown with their location', async () => {
    const parent = tempDir('weir-bad-as-');
    const { dir } = newPlugin('broken', { lang: 'as', cwd: parent });
    writeFileSync(join(dir, 'assembly/index.ts'), readFileSync(join(dir, 'assembly/index.ts'), 'utf8').replace('return Decision.continue();', 'return 42;'));
    await assert.rejects(buildPlugin(dir), (err: Error) => err instanceof PluginToolError && /asc failed/.test(err.message) && /assembly\/index\.ts\(\d+,\d+\)/.test(err.message));
  });

  test('a core module missing an export is refused with the export named', async () => {
    const { loaded } = await buildOnce(ECHO_SDK_DIR);
    const core = renameExports(loaded.coreBytes, (n) => (n === 'on-log' ? 'on-log-gone' : undefined));
    await assert.rejects(componentize(core), (err: Error) => err instanceof PluginToolError && err.message.includes('`on-log`') && err.message.includes('weir:proxy@0.2.0'));
  });

  test('a component of another world is refused by the proxy loader, naming the export', async () => {
    const { loaded } = await buildOnce(ECHO_SDK_DIR);
    const core = renameExports(loaded.coreBytes, (n) => (n === 'on-log' ? 'on-log-gone' : undefined));
    // Embed a world without on-log, so wit-component itself is satisfied.
    const wit = readFileSync(WIT_PATH, 'utf8').replace(/\n[^\n]*\n[^\n]*\n\s*export on-log: func\([^)]*\);/, '\n');
    assert.ok(!wit.includes('export on-log'));
    const { componentEmbed, componentNew } = await import('@bytecodealliance/jco-transpile/wasm-tools');
    const component = await componentNew(await componentEmbed({ binary: core, witSource: wit, world: 'plugin', stringEncoding: 'utf8' }));
    await assert.rejects(validateComponent(component), (err: Error) => err instanceof PluginToolError && /missing export on-log/.test(err.message));
  });
});

describe('weir plugin new --lang rust', () => {
  test('the scaffold depends on the Rust SDK by path and names its output', () => {
    const parent = tempDir('weir-new-rust-');
    const { dir, files } = newPlugin('rusty', { lang: 'rust', cwd: parent });
    assert.deepEqual(files.sort(), ['.gitignore', 'Cargo.toml', 'README.md', 'cases.json', 'src/lib.rs']);
    const toml = readFileSync(join(dir, 'Cargo.toml'), 'utf8');
    const path = /weir-plugin = \{ path = "([^"]+)" \}/.exec(toml)?.[1];
    assert.ok(path && existsSync(join(resolve(dir, path), 'Cargo.toml')), toml);
    assert.equal(resolve(dir, path) + '/', SDK_RUST_DIR);
    assert.deepEqual(projectInfo(dir, 'rust'), { name: 'rusty', out: 'build/rusty.wasm' });
    assert.equal(detectLang(dir), 'rust');
    assert.match(readFileSync(join(dir, 'src/lib.rs'), 'utf8'), /weir_plugin!\(Rusty\);/);
  });

  test('the scaffold builds with the Rust SDK when a wasm32 Rust toolchain is installed', async (t) => {
    let toolchain: unknown;
    try {
      const rust = (await import(new URL('../../host/src/plugin-tool/rust.ts', import.meta.url).href)) as { findRustToolchain(): Promise<unknown> };
      toolchain = await rust.findRustToolchain();
    } catch {
      toolchain = undefined;
    }
    if (!toolchain) return t.skip('no wasm32 Rust toolchain (apt-get install rustc cargo libstd-rust-dev-wasm32 lld)');
    const { dir } = newPlugin('rusty', { lang: 'rust', cwd: tempDir('weir-new-rust-build-') });
    const r = await buildPlugin(dir);
    assert.equal(r.outFile, join(dir, 'build/rusty.wasm'));
    const { inst } = await instantiate(await loadComponent(readFileSync(r.outFile)));
    assert.equal(callDescribe(inst).name, 'rusty');
    assert.deepEqual(callConfigure(inst, [{ name: 'greeting', parent: undefined, args: [{ tag: 'text', val: 'hi' }], props: [] }]), { tag: 'ok', val: undefined });
    const head = { method: 'GET', scheme: 'http', authority: 'a', path: '/', query: '', headers: [], clientAddress: '127.0.0.1', clientPort: 1, routeName: 'r', properties: [], httpVersion: '1.1' };
    assert.deepEqual(onRequestHeaders(inst, 1n, head), { tag: 'mutate', val: [{ tag: 'set-header', val: { name: 'x-rusty', value: 'hi' } }] });
    assert.equal(onRequestHeaders(inst, 2n, { ...head, path: '/blocked' }).tag, 'respond');
    // …and `weir plugin test` runs the scaffold's own cases against it.
    const tested = await weirPlugin(['test', r.outFile, join(dir, 'cases.json')], dir);
    assert.equal(tested.code, 0, tested.out + tested.err);
    assert.match(tested.out, /^2 passed, 0 failed$/m);
  });
});
