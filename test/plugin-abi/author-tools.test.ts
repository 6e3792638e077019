// What a plugin author gets from the host: the declared config-schema enforced (at load and
// by `weir validate`, at the offending node's file:line:column), the SDK getters refusing a
// mistyped value, and a trap's guest stack with demangled names — through the conformance
// fixtures built by both SDKs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseKdl } from '../../host/src/config/kdl.ts';
import { PluginTester } from '../../plugin-abi/src/harness/cases.ts';
import { checkConfigSchema, configToJson } from '../../plugin-abi/src/runtime/config-schema.ts';
import { demangle } from '../../plugin-abi/src/runtime/trap-stack.ts';
import { LANGS, buildOnce } from '../examples/build.ts';
import { tmpDir } from '../helpers/weir.ts';

const WEIR = fileURLToPath(new URL('../../host/bin/weir.ts', import.meta.url));
const conformance = (lang: string): Promise<string> => buildOnce(fileURLToPath(new URL(`../conformance/plugin/${lang}`, import.meta.url)));

function nodes(kdl: string) {
  const r = parseKdl(kdl, 'block.kdl');
  assert.ok(r.ok);
  return [...r.nodes];
}

test('a KDL block maps to JSON as docs/plugin-abi.md says, each pointer tracing back to its node', () => {
  const { json, origins } = configToJson(nodes('flag\nlimit 10\npair "a" 2\nkey header="x-k" "k1"\nrule { path "/a"; }\nrule { path "/b"; on #false; }\n'));
  assert.deepEqual(json, { flag: true, limit: 10, pair: ['a', 2], key: { header: 'x-k', args: ['k1'] }, rule: [{ path: '/a' }, { path: '/b', on: false }] });
  // Flat indexes are the WIT list's (document order, depth first): rule #2's `on` is node 8.
  assert.equal(origins.get('/rule/1/on')?.node, 8);
  assert.equal(origins.get('/key/header')?.loc?.line, 4);
  assert.equal(origins.get('/pair/1')?.loc?.column, 10);
});

test('checkConfigSchema names the node a violation is about, and passes what matches', () => {
  const schema = JSON.stringify({ type: 'object', additionalProperties: false, required: ['limit'], properties: { limit: { type: 'integer', minimum: 1 }, rule: { type: 'array' } } });
  checkConfigSchema('p', schema, nodes('limit 3\nrule { a 1; }\nrule { b 2; }\n'));
  checkConfigSchema('p', '', nodes('anything 1\n'));
  const fails = (kdl: string): { message: string; detail: { node?: number; loc?: { line: number } } } => {
    try {
      checkConfigSchema('p', schema, nodes(kdl));
    } catch (err) {
      return err as { message: string; detail: { node?: number; loc?: { line: number } } };
    }
    assert.fail(`accepted ${kdl}`);
  };
  let e = fails('limit 3\nlimt 4\n');
  assert.match(e.message, /^block\.kdl:2:1: plugin p: config does not match its config-schema: unknown node or property `limt`/);
  assert.equal(e.detail.node, 1);
  e = fails('limit "3"\n');
  assert.match(e.message, /`limit` must be integer/);
  assert.equal(e.detail.loc?.line, 1);
  e = fails('rule { a 1; }\n');
  assert.match(e.message, /missing `limit`/);
  assert.equal(e.detail.node, undefined);
  assert.throws(() => checkConfigSchema('p', '{"type": 5}', []), /its config-schema is not a valid JSON Schema/);
});

for (const lang of LANGS) {
  test(`${lang}: weir validate reports the schema's and the getters' refusals at the node's file:line:column`, async () => {
    const wasm = await conformance(lang);
    const f = join(tmpDir(), 'weir.kdl');
    writeFileSync(f, `listeners { listener "main" { address "127.0.0.1:0"; } }
routes { route "r" { upstream "o"; filters "a" "b"; } }
upstreams { upstream "o" { target "127.0.0.1:1"; } }
filters {
    filter "a" { type "wasm"; plugin "schema"; }
    filter "b" { type "wasm"; plugin "getter"; }
}
plugins {
    plugin "schema" {
        path "${wasm}"
        config {
            prefix "x-a-"
            prefixx "x-b-"
        }
    }
    plugin "getter" {
        path "${wasm}"
        config {
            callout-url 5
        }
    }
}
`);
    const r = spawnSync(process.execPath, [WEIR, 'validate', f], { encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /weir\.kdl:13:13: error WEIR_ERR_PLUGIN_CONFIG: plugin schema: config does not match its config-schema: unknown node or property `prefixx`/);
    assert.match(r.stderr, /weir\.kdl:19:13: error WEIR_ERR_PLUGIN_CONFIG: plugin getter rejected its config at `callout-url`: `callout-url` must be a string, not an integer/);
  });

  test(`${lang}: a trap's guest stack is named and demangled in weir plugin test's report`, async () => {
    const tester = new PluginTester(await conformance(lang));
    try {
      const [r] = await tester.run({ config: 'prefix "x-conf-"', cases: [{ name: 'trap', request: { path: '/trap' }, expect: { local: false } }] });
      assert.equal(r!.ok, false);
      const text = r!.problems.join('\n');
      assert.match(text, /unexpected error WEIR_ERR_PLUGIN_TRAP: plugin \S+ failed in on-request-headers \(in /);
      const frames = [...text.matchAll(/^ {4}at (.+)$/gm)].map((m) => m[1]!);
      assert.ok(frames.length >= 2, text);
      assert.ok(frames.some((f) => (lang === 'rust' ? /^weir_conformance::trap_here$/ : /Exchange#onRequestHeaders$|trapHere$/).test(f)), frames.join('\n'));
      // Nothing left mangled, no bare indexes where the name section has a name.
      assert.ok(!frames.some((f) => /^_Z|^_R|::h[0-9a-f]{16}$/.test(f)), frames.join('\n'));
    } finally {
      tester.close();
    }
  });
}

test('demangle: Rust legacy and v0 names, C++ names, and plain names as they are', () => {
  assert.equal(demangle('_ZN4core9panicking9panic_fmt17h0123456789abcdefE'), 'core::panicking::panic_fmt');
  assert.equal(demangle('_ZN5alloc7raw_vec19RawVec$LT$T$C$A$GT$16reserve_for_push17h1869649c638095daE'), 'alloc::raw_vec::RawVec<T,A>::reserve_for_push');
  assert.equal(demangle('_RNvCs1234_7mycrate3foo'), 'mycrate::foo');
  assert.equal(demangle('_ZN3foo3barEv'), 'foo::bar()');
  assert.equal(demangle('assembly/index/trapHere'), 'assembly/index/trapHere');
});
