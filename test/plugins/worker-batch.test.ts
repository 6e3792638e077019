// Consecutive worker plugins of a chain run in one round trip per phase, one after another
// in the worker with the mutations of each visible to the next; a member that traps or
// passes its deadline inside such a run is the one blamed, and its own failure mode applies
// (open: the members after it still run; closed: the request fails there).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import { errorCode } from '../helpers/http.ts';
import { writeProbe } from '../helpers/probe.ts';
import type { Weir } from '../../host/src/weir.ts';

let origin: Origin;
let weir: Weir;
let url: string;
const lines: Array<Record<string, unknown>> = [];
const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });

before(async () => {
  const probe = await writeProbe(tmpDir());
  origin = await startOrigin();
  ({ weir, url } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins {
    plugin "b-header" { path "${probe}"; isolation "worker"; pool-size 1; config { mode "header"; value "batched"; } }
    plugin "b-trap" { path "${probe}"; isolation "worker"; pool-size 1; config { mode "trap"; } }
    plugin "b-loop" { path "${probe}"; isolation "worker"; pool-size 1; timeout-ms 200; fuel 1000000000000; config { mode "loop"; } }
    plugin "b-count" { path "${probe}"; isolation "worker"; pool-size 1; config { mode "count"; } }
}
filters {
    filter "b-header" { type "wasm"; plugin "b-header"; failure-mode "closed"; }
    filter "b-trap-open" { type "wasm"; plugin "b-trap"; failure-mode "open"; }
    filter "b-trap-closed" { type "wasm"; plugin "b-trap"; failure-mode "closed"; }
    filter "b-loop-open" { type "wasm"; plugin "b-loop"; failure-mode "open"; }
    filter "b-count" { type "wasm"; plugin "b-count"; failure-mode "closed"; }
}
routes {
    route "open" { priority 10; matches { header "x-mode" "open"; }; upstream "o"; filters "b-header" "b-trap-open" "b-count"; }
    route "closed" { priority 10; matches { header "x-mode" "closed"; }; upstream "o"; filters "b-header" "b-trap-closed" "b-count"; }
    route "loop" { priority 10; matches { header "x-mode" "loop"; }; upstream "o"; filters "b-header" "b-loop-open" "b-count"; }
}
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
`, { logger }));
});

after(async () => {
  await weir?.close();
  await origin?.close();
});

async function call(mode: string, headers: Record<string, string> = {}): Promise<{ status: number; code: string | undefined }> {
  const res = await request(`${url}/x`, { headers: { 'x-mode': mode, ...headers } });
  const text = await res.body.text();
  return { status: res.statusCode, code: errorCode(text) };
}

/** Warnings and errors logged since `from` that name `filter`. */
const blamed = (from: number, filter: string): Array<Record<string, unknown>> => lines.slice(from).filter((l) => Number(l['level']) >= 40 && l['filter'] === filter);
const named = (from: number, name: string): Array<Record<string, unknown>> => lines.slice(from).filter((l) => Number(l['level']) >= 40 && JSON.stringify(l).includes(`"${name}"`));

test('a batched run: every member runs, in order, in one phase', async () => {
  const seen = origin.seen.length;
  assert.equal((await call('open')).status, 200);
  const got = origin.seen.slice(seen)[0]!;
  assert.equal(got.headers['x-probe'], 'batched', 'the first member set its header');
  assert.ok(Number(got.headers['x-count']) >= 1, 'the last member ran after it');
});

test('a trapping member with failure-mode open inside a run: it alone is blamed, the members after it still run', async () => {
  const from = lines.length;
  const seen = origin.seen.length;
  const r = await call('open', { 'x-trap': '1' });
  assert.equal(r.status, 200);
  const got = origin.seen.slice(seen)[0]!;
  assert.equal(got.headers['x-probe'], 'batched');
  assert.ok(got.headers['x-count'] !== undefined, 'the member after the trap ran');
  assert.ok(blamed(from, 'b-trap-open').some((l) => l['code'] === 'WEIR_ERR_PLUGIN_TRAP'), 'the trapping member is blamed');
  assert.deepEqual(named(from, 'b-header'), []);
  assert.deepEqual(named(from, 'b-count'), []);
});

test('a trapping member with failure-mode closed inside a run: the request fails with its error, nothing reaches the origin', async () => {
  const from = lines.length;
  const seen = origin.seen.length;
  const r = await call('closed', { 'x-trap': '1' });
  assert.deepEqual(r, { status: 503, code: 'WEIR_ERR_PLUGIN_TRAP' });
  assert.equal(origin.seen.length, seen);
  assert.ok(blamed(from, 'b-trap-closed').some((l) => l['code'] === 'WEIR_ERR_PLUGIN_TRAP'));
  assert.deepEqual(named(from, 'b-header'), []);
  assert.deepEqual(named(from, 'b-count'), []);
  assert.equal((await call('closed')).status, 200, 'the next request runs the whole run again');
});

test('a member past its deadline inside a run (failure-mode open): it alone is blamed with WEIR_ERR_PLUGIN_TIMEOUT, the members before and after it count', async () => {
  const from = lines.length;
  const seen = origin.seen.length;
  const r = await call('loop', { 'x-loop': '1' });
  assert.equal(r.status, 200, `${r.code}`);
  const got = origin.seen.slice(seen)[0]!;
  assert.equal(got.headers['x-probe'], 'batched', 'the member before the loop kept its mutation');
  assert.ok(got.headers['x-count'] !== undefined, 'the member after the loop ran (on the replacement thread if the thread was replaced)');
  assert.ok(blamed(from, 'b-loop-open').some((l) => l['code'] === 'WEIR_ERR_PLUGIN_TIMEOUT'), 'the looping member is blamed');
  assert.deepEqual(named(from, 'b-header'), []);
  assert.deepEqual(named(from, 'b-count'), []);
  assert.equal((await call('loop')).status, 200, 'the run serves the next request');
});
