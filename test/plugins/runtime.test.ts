// The plugin runtime end to end through the real proxy, with the Rust probe plugin
// (test/fixtures/rust/probe) built by our SDK: mutations, local replies, body rewrite,
// select-upstream, set-upstream, JSPI callouts, and every failure the runtime must contain.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { request, Agent } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import { errorCode } from '../helpers/http.ts';
import { writeProbe, probeComponent } from '../helpers/probe.ts';
import { WIT_SOURCE, dummyComponent } from '../fixtures/plugins/build.ts';
import type { Weir } from '../../host/src/weir.ts';

let dir: string;
let probe: string;
let a: Origin;
let b: Origin;
let weir: Weir;
let url: string;

const MODES = ['header', 'deny', 'trap', 'loop', 'hog', 'crlf', 'huge', 'bad-status', 'upper-body', 'select', 'canary', 'callout'];

function config(extra = ''): string {
  // The hog fills what it allocates byte by byte: give it fuel enough to reach the memory cap.
  const fuel = (m: string): number => (m === 'hog' ? 2_000_000_000 : 20_000_000);
  const value = (m: string): string => (m === 'canary' ? 'canary' : `v-${m}`);
  // A callout gets at most its hook's deadline (timeout-ms, 100 ms by default): leave room on a busy machine.
  const timeout = (m: string): string => (m === 'callout' ? ' timeout-ms 3000;' : '');
  const plugins = MODES.map((m) => `    plugin "${m}" { path "${probe}"; fuel ${fuel(m)};${timeout(m)} memory-limit "16MiB"; config { mode "${m}"; value "${value(m)}"; url "http://127.0.0.1:${b.port}/callout-target"; } }`).join('\n');
  const filters = MODES.map((m) => `    filter "${m}" { type "wasm"; plugin "${m}"; failure-mode "closed"; }`).join('\n');
  const routes = MODES.map((m, i) => `    route "${m}" { priority ${100 - i}; matches { header "x-mode" "${m}"; }; upstream "a"; filters "${m}"; }`).join('\n');
  return `
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins {
${plugins}
    plugin "trap-open" { path "${probe}"; config { mode "trap"; } }
    plugin "loop-worker" { path "${probe}"; isolation "worker"; timeout-ms 300; fuel 100000000000; pool-size 1; config { mode "loop"; } }
${extra}
}
filters {
${filters}
    filter "trap-open" { type "wasm"; plugin "trap-open"; failure-mode "open"; }
    filter "loop-worker" { type "wasm"; plugin "loop-worker"; failure-mode "closed"; }
}
routes {
${routes}
    route "trap-open" { priority 200; matches { header "x-mode" "trap-open"; }; upstream "a"; filters "trap-open"; }
    route "loop-worker" { priority 200; matches { header "x-mode" "loop-worker"; }; upstream "a"; filters "loop-worker"; }
    route "plain" { priority 0; matches { path-prefix "/"; }; upstream "a"; }
}
upstreams {
    upstream "a" { target "127.0.0.1:${a.port}"; target "127.0.0.1:${b.port}" weight=0; }
    upstream "canary" { target "127.0.0.1:${b.port}"; }
    upstream "pair" { target "127.0.0.1:${a.port}"; target "127.0.0.1:${b.port}"; }
}
`;
}

before(async () => {
  dir = tmpDir();
  probe = await writeProbe(dir);
  await probeComponent('2'); // built now: the hot-swap test must not wait for cargo
  a = await startOrigin();
  b = await startOrigin((req, res, body) => {
    if (req.url === '/callout-target') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('pong');
      return;
    }
    res.writeHead(200, { 'x-served-by': 'b' }).end(JSON.stringify({ url: req.url, body: body.toString() }));
  });
  ({ weir, url } = await startWeirWith(config()));
});

after(async () => {
  await weir?.close();
  await a?.close();
  await b?.close();
});

async function call(mode: string, opts: { path?: string; headers?: Record<string, string>; method?: string; body?: string } = {}) {
  const res = await request(`${url}${opts.path ?? '/x'}`, { method: (opts.method ?? 'GET') as 'GET', headers: { 'x-mode': mode, ...opts.headers }, body: opts.body });
  const text = await res.body.text();
  const code = errorCode(text);
  return { status: res.statusCode, headers: res.headers, text, code };
}

test('header mutations on request and response, properties, version', async () => {
  const r = await call('header');
  assert.equal(r.status, 200);
  const seen = a.seen.at(-1)!;
  assert.equal(seen.headers['x-probe'], 'v-header');
  assert.equal(seen.headers['x-probe-version'], '1');
  assert.equal(r.headers['x-probe-response'], '1');
  assert.equal(r.headers['x-probe-seen'], '1', 'per-request state kept between hooks');
});

test('local reply: nothing reaches the origin', async () => {
  const before = a.seen.length;
  const r = await call('deny', { path: '/secret' });
  assert.equal(r.status, 403);
  assert.deepEqual(JSON.parse(r.text), { denied: '/secret' });
  assert.equal(a.seen.length, before);
});

test('a trap fails closed with WEIR_ERR_PLUGIN_TRAP, a fresh instance serves the next request; failure-mode open skips', async () => {
  const r = await call('trap', { headers: { 'x-trap': '1' } });
  assert.equal(r.status, 503);
  assert.equal(r.code, 'WEIR_ERR_PLUGIN_TRAP');
  const ok = await call('trap');
  assert.equal(ok.status, 200);
  const open = await call('trap-open', { headers: { 'x-trap': '1' } });
  assert.equal(open.status, 200, 'failure-mode open: the request goes on without the plugin');
});

test('an infinite loop is stopped by fuel, and the proxy keeps serving meanwhile', async () => {
  const started = performance.now();
  const [looped, plain] = await Promise.all([call('loop', { headers: { 'x-loop': '1' } }), call('plain')]);
  assert.equal(looped.status, 503);
  assert.equal(looped.code, 'WEIR_ERR_PLUGIN_FUEL');
  assert.equal(plain.status, 200);
  assert.ok(performance.now() - started < 10_000);
  const text = await weir.metrics.registry.metrics();
  assert.match(text, /weir_plugin_errors_total\{plugin="loop",hook="on-request-headers",kind="fuel"\} 1/);
});

test('a memory hog hits its cap: WEIR_ERR_PLUGIN_MEMORY', async () => {
  const r = await call('hog', { headers: { 'x-hog': '1' } });
  assert.equal(r.status, 503);
  assert.equal(r.code, 'WEIR_ERR_PLUGIN_MEMORY');
  assert.equal((await call('hog')).status, 200);
});

test('CRLF in a header value is refused: nothing with it goes on the wire', async () => {
  const before = a.seen.length;
  const r = await call('crlf');
  assert.equal(r.status, 503);
  assert.equal(r.code, 'WEIR_ERR_PLUGIN_INVALID_MUTATION');
  assert.equal(a.seen.length, before);
});

test('a header value over the limit (16 KiB) is refused', async () => {
  const before = a.seen.length;
  const r = await call('huge');
  assert.equal(r.status, 503);
  assert.equal(r.code, 'WEIR_ERR_PLUGIN_INVALID_MUTATION');
  assert.equal(a.seen.length, before);
});

test('an invalid status from on-response-headers is refused', async () => {
  const r = await call('bad-status');
  assert.equal(r.status, 503);
  assert.equal(r.code, 'WEIR_ERR_PLUGIN_INVALID_MUTATION');
});

test('request body rewrite (streamed body hook)', async () => {
  const r = await call('upper-body', { method: 'POST', body: 'make me loud' });
  assert.equal(r.status, 200);
  assert.equal(a.seen.at(-1)!.body.toString(), 'MAKE ME LOUD');
});

test('select-upstream picks the target the plugin chooses (even a weight-0 one)', async () => {
  const r = await call('select', { headers: { 'x-target': String(b.port) } });
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-served-by'], 'b');
  const d = await call('select');
  assert.equal(d.headers['x-served-by'], undefined, 'no choice: the upstream balancing (weight 0 excludes b)');
});

test('set-upstream routes to another upstream (canary)', async () => {
  assert.equal((await call('canary', { headers: { 'x-canary': '1' } })).headers['x-served-by'], 'b');
  assert.equal((await call('canary')).headers['x-served-by'], undefined);
});

test('an async HTTP callout (JSPI) from a plugin', async () => {
  const r = await call('callout');
  assert.equal(r.status, 200);
  assert.equal(a.seen.at(-1)!.headers['x-callout'], '200:pong');
});

test('worker isolation: an infinite loop is stopped by the deadline; the worker is replaced', async () => {
  const started = performance.now();
  const r = await call('loop-worker', { headers: { 'x-loop': '1' } });
  const ms = performance.now() - started;
  assert.equal(r.status, 503);
  assert.equal(r.code, 'WEIR_ERR_PLUGIN_TIMEOUT');
  assert.ok(ms < 5000, `stopped after ${Math.round(ms)} ms`);
  const again = await call('loop-worker');
  assert.equal(again.status, 200, 'the replacement worker serves the next request');
});

test('crash loops back off: WEIR_ERR_PLUGIN_UNAVAILABLE after repeated traps', async () => {
  const codes: Array<string | undefined> = [];
  for (let i = 0; i < 7; i++) codes.push((await call('trap', { headers: { 'x-trap': '1' } })).code);
  assert.ok(codes.includes('WEIR_ERR_PLUGIN_UNAVAILABLE'), codes.join(','));
});

test('hot swap under a bounded load loop: zero failed requests, the new code serves', async (t) => {
  const agent = new Agent({ connections: 8 });
  let failures = 0;
  let ok = 0;
  const versions = new Set<string>();
  const deadline = Date.now() + 3000;
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline) {
      try {
        const res = await request(`${url}/load`, { dispatcher: agent, headers: { 'x-mode': 'header' } });
        await res.body.dump();
        if (res.statusCode === 200) ok++;
        else failures++;
        versions.add(String(res.headers['x-probe-response']));
      } catch {
        failures++;
      }
    }
  };
  const load = Promise.all(Array.from({ length: 6 }, worker));
  await new Promise((r) => setTimeout(r, 500));
  // Replace the file the way build tools do: write beside it, rename over it.
  const next = join(dir, 'probe.next.wasm');
  writeFileSync(next, await probeComponent('2'));
  const swapStarted = performance.now();
  renameSync(next, probe);
  let swapped = false;
  while (!swapped && performance.now() - swapStarted < 2500) {
    await new Promise((r) => setTimeout(r, 25));
    swapped = versions.has('2');
  }
  t.diagnostic(`swap: file renamed → first response from the new code in ${Math.round(performance.now() - swapStarted)} ms (25 ms polling)`);
  await load;
  await agent.close();
  assert.equal(failures, 0, `${failures} failed of ${ok + failures}`);
  assert.ok(versions.has('1') && versions.has('2'), `served by ${[...versions].join(',')}`);
  const text = await weir.metrics.registry.metrics();
  assert.match(text, /weir_plugin_reloads_total\{plugin="header",result="ok"\} 1/);
});

test('a broken plugin file keeps the old version serving', async () => {
  writeFileSync(join(dir, 'broken.tmp'), 'not wasm');
  renameSync(join(dir, 'broken.tmp'), probe);
  await new Promise((r) => setTimeout(r, 300));
  await weir.plugins.lastSwap;
  const r = await call('header');
  assert.equal(r.status, 200);
  assert.equal(r.headers['x-probe-response'], '2');
  const text = await weir.metrics.registry.metrics();
  assert.match(text, /weir_plugin_reloads_total\{plugin="header",result="error"\} [1-9]/);
});

test('a plugin that rejects its config fails the load with WEIR_ERR_PLUGIN_CONFIG', async () => {
  const d = tmpDir();
  const p = await writeProbe(d);
  await assert.rejects(
    startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
plugins { plugin "p" { path "${p}"; config { mode "nope"; } } }
filters { filter "f" { type "wasm"; plugin "p"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "u"; filters "f"; } }
upstreams { upstream "u" { target "127.0.0.1:9"; } }`),
    (err: Error & { code?: string }) => err.code === 'WEIR_ERR_PLUGIN_CONFIG' && /unknown mode/.test(err.message),
  );
});

test('a component that does not match the world is refused, naming what is missing', async () => {
  const d = tmpDir();
  const wit = WIT_SOURCE.replace(/@since\(version = 0\.1\.0\)\s*export on-log: func[^;]*;/, '');
  const p = join(d, 'bad.wasm');
  writeFileSync(p, await dummyComponent(wit));
  await assert.rejects(
    startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
plugins { plugin "p" { path "${p}"; } }
filters { filter "f" { type "wasm"; plugin "p"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "u"; filters "f"; } }
upstreams { upstream "u" { target "127.0.0.1:9"; } }`),
    (err: Error & { code?: string }) => err.code === 'WEIR_ERR_PLUGIN_WORLD_MISMATCH' && /on-log/.test(err.message),
  );
});
