// Hostile plugins against the deadlines and limits that must always hold, each while the
// proxy serves other routes: a loop with a huge fuel budget, a loop of now-ms host calls, a
// callout stuck when its client goes away, a callout asking for more time than its hook has,
// a worker plugin timing out next to a good one, a trapping worker plugin, and a local reply
// with 10,000 headers. Bounds are loose (deadline × a factor plus slack): the machine is
// shared and noisy; what they catch is a stall of seconds or a hang.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import { errorCode } from '../helpers/http.ts';
import { LocalStore } from '../../host/src/store/local.ts';
import { writeProbe } from '../helpers/probe.ts';
import type { Weir } from '../../host/src/weir.ts';

let origin: Origin;
let weir: Weir;
let url: string;
let hangServer: http.Server;
let hangPort: number;
/** While true the callout target never answers. */
let hang = true;
/** performance.now() of each closed connection to the callout target; requests it got. */
const hangClosed: number[] = [];
let hangRequests = 0;
const lines: Array<Record<string, unknown>> = [];
const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });

/** A loose bound for a call whose deadline is `deadlineMs`. */
const bound = (deadlineMs: number): number => 1500 + deadlineMs * 5;

before(async () => {
  const dir = tmpDir();
  const probe = await writeProbe(dir);
  origin = await startOrigin();
  hangServer = http.createServer((req, res) => {
    hangRequests++;
    if (!hang) {
      res.end('pong');
      return;
    }
    req.socket.on('close', () => hangClosed.push(performance.now()));
  });
  await new Promise<void>((r) => hangServer.listen(0, '127.0.0.1', r));
  hangPort = (hangServer.address() as AddressInfo).port;
  const target = `http://127.0.0.1:${hangPort}/hang`;
  const plugins: Record<string, string> = {
    spin: `fuel 1000000000000; timeout-ms 100; config { mode "loop"; }`,
    clock: `fuel 1000000000000; timeout-ms 50; config { mode "clock"; }`,
    'clock-default': `timeout-ms 50; config { mode "clock"; }`,
    stuck: `timeout-ms 5000; pool-size 1; config { mode "callout"; url "${target}"; timeout 60000; }`,
    'stuck-worker': `isolation "worker"; timeout-ms 5000; pool-size 1; config { mode "callout"; url "${target}"; timeout 60000; }`,
    capped: `timeout-ms 600; config { mode "callout"; url "${target}"; timeout 60000; }`,
    many: `config { mode "many-headers"; count 10000; }`,
    hundred: `config { mode "many-headers"; count 100; }`,
    'bad-worker': `isolation "worker"; timeout-ms 200; fuel 1000000000000; pool-size 1; config { mode "loop"; }`,
    'good-worker': `isolation "worker"; pool-size 1; timeout-ms 1000; config { mode "header"; value "good-worker"; }`,
    'trap-worker': `isolation "worker"; pool-size 1; config { mode "trap"; }`,
    good: `config { mode "header"; value "good"; }`,
  };
  const names = Object.keys(plugins);
  const config = `
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins {
${names.map((n) => `    plugin "${n}" { path "${probe}"; ${plugins[n]} }`).join('\n')}
}
filters {
${names.map((n) => `    filter "${n}" { type "wasm"; plugin "${n}"; failure-mode "closed"; }`).join('\n')}
}
routes {
${names.map((n) => `    route "${n}" { priority 10; matches { header "x-mode" "${n}"; }; upstream "o"; filters "${n}"; }`).join('\n')}
    route "plain" { priority 0; matches { path-prefix "/"; }; upstream "o"; }
}
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
`;
  ({ weir, url } = await startWeirWith(config, { logger }));
});

after(async () => {
  await weir?.close();
  await origin?.close();
  hangServer?.closeAllConnections();
  await new Promise<void>((r) => hangServer?.close(() => r()));
});

interface Answer {
  status: number;
  code: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  ms: number;
}

async function call(mode: string | undefined, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Answer> {
  const t0 = performance.now();
  const res = await request(`${url}/x`, { headers: { ...(mode ? { 'x-mode': mode } : {}), ...headers }, signal });
  const text = await res.body.text();
  const code = errorCode(text);
  return { status: res.statusCode, code, headers: res.headers, ms: performance.now() - t0 };
}

/**
 * Runs `attack` while a loop sends requests to other routes (`modes`, in turn) one after
 * the other; returns the attack's result and what the other requests got.
 */
async function whileServing<T>(modes: Array<string | undefined>, attack: () => Promise<T>): Promise<{ result: T; ms: number; others: Answer[]; during: number }> {
  const others: Answer[] = [];
  let done = false;
  let during = 0;
  const loop = (async () => {
    for (let i = 0; !done || others.length === 0; i++) {
      const a = await call(modes[i % modes.length]);
      others.push(a);
      if (!done) during++;
    }
  })();
  // Let the loop's first request start before the attack.
  await new Promise((r) => setImmediate(r));
  const t0 = performance.now();
  const result = await attack();
  const ms = performance.now() - t0;
  done = true;
  await loop;
  return { result, ms, others, during };
}

function assertServed(others: Answer[], maxMs: number): void {
  assert.ok(others.length > 0);
  for (const o of others) assert.equal(o.status, 200, `another route answered ${o.status} ${o.code ?? ''}`);
  const worst = Math.max(...others.map((o) => o.ms));
  assert.ok(worst < maxMs, `another route waited ${Math.round(worst)} ms (bound ${maxMs} ms)`);
}

test('inline: a loop with a huge fuel budget ends at its deadline (WEIR_ERR_PLUGIN_TIMEOUT), the proxy stalls at most about that long', async (t) => {
  const runs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const { result, ms, others } = await whileServing([undefined, 'good'], () => call('spin', { 'x-loop': '1' }));
    assert.equal(result.status, 503);
    assert.equal(result.code, 'WEIR_ERR_PLUGIN_TIMEOUT');
    assert.ok(ms < bound(100), `the loop ran ${Math.round(ms)} ms with a 100 ms deadline`);
    assertServed(others, bound(100));
    runs.push(Math.round(ms));
  }
  t.diagnostic(`spin (fuel 1e12, timeout-ms 100): answered after ${runs.join(', ')} ms`);
  const metrics = await weir.metrics.registry.metrics();
  assert.match(metrics, /weir_plugin_errors_total\{plugin="spin",hook="on-request-headers",kind="timeout"\} 3/);
  assert.equal((await call('spin')).status, 200, 'a fresh instance serves the next request');
});

test('inline: a loop of now-ms host calls ends at its deadline, with a huge fuel budget or the default one', async (t) => {
  for (const [mode, codes] of [['clock', ['WEIR_ERR_PLUGIN_TIMEOUT']], ['clock-default', ['WEIR_ERR_PLUGIN_FUEL', 'WEIR_ERR_PLUGIN_TIMEOUT']]] as const) {
    const runs: number[] = [];
    for (let i = 0; i < 3; i++) {
      const { result, ms, others } = await whileServing([undefined, 'good'], () => call(mode, { 'x-clock': '1' }));
      assert.equal(result.status, 503);
      // Host calls cost fuel and check the clock: with fuel to spare the deadline stops the
      // loop; with the default budget the fuel (≈ 10 ms of host calls) usually runs out
      // first, unless the machine is so busy that the clock passes the deadline before.
      assert.ok((codes as readonly string[]).includes(result.code ?? ''), `${mode}: ${result.code}`);
      assert.ok(ms < bound(50), `${mode}: the loop ran ${Math.round(ms)} ms with a 50 ms deadline`);
      assertServed(others, bound(50));
      runs.push(Math.round(ms));
    }
    t.diagnostic(`${mode} (timeout-ms 50): answered after ${runs.join(', ')} ms`);
  }
});

test('a callout asking for 60 s gets the hook\'s deadline; the guest sees the timeout and goes on', async (t) => {
  hang = true;
  const seen = origin.seen.length;
  const { result, ms, others, during } = await whileServing([undefined, 'good'], () => call('capped'));
  assert.equal(result.status, 200, `${result.code}`);
  assert.ok(ms < bound(600), `the callout held the request ${Math.round(ms)} ms with a 600 ms deadline`);
  const sent = origin.seen.slice(seen).find((s) => s.headers['x-callout-error'] !== undefined);
  assert.equal(sent?.headers['x-callout-error'], 'WEIR_ERR_UPSTREAM_TIMEOUT');
  assertServed(others, bound(600));
  assert.ok(during >= 1, 'other routes answered while the callout was pending');
  t.diagnostic(`capped callout answered after ${Math.round(ms)} ms; ${during} other requests meanwhile`);
});

for (const mode of ['stuck', 'stuck-worker']) {
  test(`${mode}: a callout stuck when its client goes away is aborted, and the plugin's next request does not hang`, async (t) => {
    hang = true;
    const closedBefore = hangClosed.length;
    const ac = new AbortController();
    const { result, others, during } = await whileServing([undefined, 'good'], async () => {
      const asked = hangRequests;
      const pending = call(mode, {}, ac.signal).then(() => 'answered', (e: Error) => e.name);
      // The callout is out (the target holds it) before the client leaves.
      while (hangRequests === asked) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 100));
      const abortedAt = performance.now();
      ac.abort();
      const outcome = await pending;
      while (hangClosed.length === closedBefore && performance.now() - abortedAt < 5000) await new Promise((r) => setTimeout(r, 10));
      return { outcome, closeMs: hangClosed.length > closedBefore ? hangClosed[closedBefore]! - abortedAt : Infinity };
    });
    assert.equal(result.outcome, 'AbortError');
    // The plugin's own deadline is 5 s: only the client's abort can have closed it this early.
    assert.ok(result.closeMs < 1500, `the callout's connection closed ${Math.round(result.closeMs)} ms after the client left`);
    assertServed(others, 2000);
    assert.ok(during >= 1, 'other routes answered while the callout was stuck');
    // pool-size 1 and a LIFO pool: a suspended instance put back would serve (hang) this one.
    hang = false;
    const next = await call(mode, {}, AbortSignal.timeout(4000));
    assert.equal(next.status, 200);
    assert.equal(origin.seen.at(-1)!.headers['x-callout'], '200:pong');
    t.diagnostic(`${mode}: callout connection closed ${Math.round(result.closeMs)} ms after the client abort; next request ${Math.round(next.ms)} ms`);
  });
}

test('worker isolation: a plugin timing out on its threads never fails or is blamed for a good worker plugin', async (t) => {
  const before = lines.length;
  const goodSeen = origin.seen.length;
  const { result, others, during } = await whileServing(['good-worker'], async () => {
    const out: Answer[] = [];
    for (let round = 0; round < 2; round++) out.push(...(await Promise.all([1, 2, 3].map(() => call('bad-worker', { 'x-loop': '1' })))));
    return out;
  });
  for (const r of result) {
    assert.equal(r.status, 503);
    assert.equal(r.code, 'WEIR_ERR_PLUGIN_TIMEOUT');
  }
  assertServed(others, bound(200));
  assert.ok(during >= 3, `the good worker plugin answered ${during} requests during the attack`);
  const marked = origin.seen.slice(goodSeen).filter((s) => s.headers['x-probe'] === 'good-worker').length;
  assert.equal(marked, others.length, 'every good-worker request went through the good plugin');
  const blamed = lines.slice(before).filter((l) => Number(l['level']) >= 40 && JSON.stringify(l).includes('good-worker'));
  assert.deepEqual(blamed, [], 'no warning names the good plugin');
  t.diagnostic(`good worker plugin: ${others.length} requests, worst ${Math.round(Math.max(...others.map((o) => o.ms)))} ms during 6 timeouts of its neighbour`);
});

test('worker isolation: a trap keeps the guest\'s log lines and its panic message', async () => {
  const before = lines.length;
  const r = await call('trap-worker', { 'x-trap': '1' });
  assert.equal(r.status, 503);
  assert.equal(r.code, 'WEIR_ERR_PLUGIN_TRAP');
  const deadline = performance.now() + 2000;
  const find = (): Array<Record<string, unknown>> => lines.slice(before).filter((l) => String(l['msg']).includes('probe asked to trap') || String(l['err']).includes('probe asked to trap'));
  while (find().length < 2 && performance.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  const found = find();
  assert.ok(found.some((l) => l['plugin'] === 'trap-worker' && l['level'] === 50 && l['thread'] === 'plugin-worker'), 'the guest\'s panic line, from the worker thread');
  assert.ok(found.some((l) => l['filter'] === 'trap-worker' && String(l['err']).includes('the guest logged')), 'the failure names the panic message');
});

test('a local reply with 10,000 headers is refused (WEIR_ERR_PLUGIN_INVALID_MUTATION) and logged; 100 pass', async () => {
  const before = lines.length;
  const { result, others } = await whileServing([undefined, 'good'], () => call('many'));
  assert.equal(result.status, 503);
  assert.equal(result.code, 'WEIR_ERR_PLUGIN_INVALID_MUTATION');
  assert.ok(Object.keys(result.headers).filter((h) => h.startsWith('x-h')).length === 0, 'none of the headers reached the client');
  assertServed(others, 2000);
  assert.ok(lines.slice(before).some((l) => l['code'] === 'WEIR_ERR_PLUGIN_INVALID_MUTATION' && String(l['err']).includes('10000 headers')), 'logged with the count');
  const metrics = await weir.metrics.registry.metrics();
  assert.match(metrics, /weir_plugin_errors_total\{plugin="many",hook="on-request-headers",kind="invalid-mutation"\} 1/);
  const ok = await call('hundred');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-h99'], 'v');
});

test('a synchronous call that answers past its deadline (a slow host call) is refused with WEIR_ERR_PLUGIN_TIMEOUT; its instance stays', async () => {
  // A local store whose counter-add blocks the thread while `slowMs` > 0.
  let slowMs = 0;
  const store = new LocalStore();
  const add = store.counterAdd.bind(store);
  store.counterAdd = (key, delta, windowMs) => {
    const until = performance.now() + slowMs;
    while (performance.now() < until);
    return add(key, delta, windowMs);
  };
  const probe = await writeProbe(tmpDir());
  const { weir: w, url: u } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins { plugin "count" { path "${probe}"; timeout-ms 50; config { mode "count"; } } }
filters { filter "count" { type "wasm"; plugin "count"; failure-mode "closed"; } }
routes { route "all" { matches { path-prefix "/"; }; upstream "o"; filters "count"; } }
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
`, { store, logger });
  try {
    const get = async (): Promise<{ status: number; code: string | undefined }> => {
      const res = await request(`${u}/slow`);
      const text = await res.body.text();
      return { status: res.statusCode, code: res.statusCode === 200 ? undefined : (JSON.parse(text) as { error: { code: string } }).error.code };
    };
    assert.equal((await get()).status, 200);
    const instances = async (): Promise<string | undefined> => /weir_plugin_instances\{plugin="count"\} (\d+)/.exec(await w.metrics.registry.metrics())?.[1];
    const before = await instances();
    assert.ok(before !== undefined);
    slowMs = 120;
    assert.deepEqual(await get(), { status: 503, code: 'WEIR_ERR_PLUGIN_TIMEOUT' });
    slowMs = 0;
    assert.equal((await get()).status, 200);
    // The guest finished its call: same instance, its counter saw all three requests.
    assert.equal(origin.seen.at(-1)!.headers['x-count'], '3');
    assert.equal(await instances(), before, 'no instance was replaced');
    const metrics = await w.metrics.registry.metrics();
    assert.match(metrics, /weir_plugin_errors_total\{plugin="count",hook="on-request-headers",kind="timeout"\} 1/);
  } finally {
    await w.close();
    store.close();
  }
});
