import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { buildEchoComponent } from '../fixtures/plugins/build.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

let origin: Origin;
let weir: Weir;
let url: string;

before(async () => {
  const dir = tmpDir();
  const wasmPath = join(dir, 'echo.wasm');
  writeFileSync(wasmPath, await buildEchoComponent());
  origin = await startOrigin();
  const started = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins {
    plugin "echo" {
        path "${wasmPath}"
        config { greeting "hi"; }
    }
    plugin "echo-worker" {
        path "${wasmPath}"
        isolation "worker"
        timeout-ms 2000
        pool-size 2
    }
}
filters {
    filter "echo" { type "wasm"; plugin "echo"; failure-mode "closed"; }
    filter "echo-w" { type "wasm"; plugin "echo-worker"; failure-mode "closed"; }
}
routes {
    route "r" { matches { path-prefix "/"; }; upstream "o"; filters "echo"; }
    route "w" { priority 5; matches { header "x-worker" "1"; }; upstream "o"; filters "echo-w"; }
}
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
`);
  weir = started.weir;
  url = started.url;
});

after(async () => {
  await weir?.close();
  await origin?.close();
});

// The echo fixture is the codec's differential-test plugin: its outputs are hashes of its
// inputs, so it exercises the host's validation of whatever a plugin returns.

test('a plugin returning an out-of-range target index fails the request closed, nothing reaches the origin', async () => {
  const before = origin.seen.length;
  const res = await request(`${url}/hello`, { headers: { 'x-in': 'héllo' } });
  assert.equal(res.statusCode, 503);
  const body = (await res.body.json()) as { error: { code: string } };
  assert.equal(body.error.code, 'WEIR_ERR_PLUGIN_INVALID_MUTATION');
  assert.equal(origin.seen.length, before);
});

test('a plugin local reply ends the request before the upstream and passes through its response hook', async () => {
  const before = origin.seen.length;
  const res = await request(`${url}/deny`, { headers: { 'x-in': 'why' } });
  // on-request-headers replies 403; the echo's on-response-headers sets status ^ 1
  assert.equal(res.statusCode, 402);
  await res.body.dump();
  assert.equal(origin.seen.length, before);
});

test('worker isolation: the plugin runs in a piscina worker and its decisions are validated on the proxy thread', async () => {
  const before = origin.seen.length;
  const bad = await request(`${url}/hello`, { headers: { 'x-worker': '1' } });
  const body = (await bad.body.json()) as { error: { code: string; message: string } };
  assert.equal(bad.statusCode, 503);
  assert.equal(body.error.code, 'WEIR_ERR_PLUGIN_INVALID_MUTATION');
  // Which target the plugin chose is detail for the log; the client gets the table's message.
  assert.equal(body.error.message, 'the plugin returned an invalid mutation');
  assert.equal(origin.seen.length, before);
});

test('plugin metrics are exported', async () => {
  const text = await weir.metrics.registry.metrics();
  assert.match(text, /weir_plugin_calls_total\{plugin="echo",hook="on-request-headers"\} [1-9]/);
  assert.match(text, /weir_plugin_instances\{plugin="echo"\} [1-9]/);
});
