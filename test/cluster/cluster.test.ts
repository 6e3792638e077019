/**
 * `worker-threads 2` for real: two proxy threads on one port (SO_REUSEPORT), shared state,
 * crash replacement, reload fan-out, aggregated metrics and a draining shutdown.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startCluster, type Cluster } from '../../host/src/cluster/supervisor.ts';
import { SharedStore } from '../../host/src/store/shared.ts';
import { buildEchoComponent } from '../fixtures/plugins/build.ts';
import { echo, startOrigin, type Origin } from '../helpers/origin.ts';
import { freePort } from '../helpers/servers.ts';
import { quiet, tmpDir } from '../helpers/weir.ts';

let origin: Origin;
let cluster: Cluster;
let port: number;
let file: string;
let wasmPath: string;
let deadPort: number;

function config(extraRoute = ''): string {
  return `schema-version "1.0"
system { worker-threads 2; graceful-shutdown-timeout-secs 5; }
listeners { listener "main" { address "127.0.0.1:${port}"; } }
routes {
    route "flaky" { priority 8; matches { path-prefix "/flaky"; }; upstream "flaky"; }
    route "echo" { priority 8; matches { path-prefix "/echo"; }; upstream "origin"; filters "echo"; }
    route "status" { priority 10; matches { path "/_/status"; }; builtin-handler "status"; }
    route "metrics" { priority 10; matches { path "/_/metrics"; }; builtin-handler "metrics"; }
    ${extraRoute}
    route "default" { matches { path-prefix "/"; }; upstream "origin"; }
}
 plugins { plugin "echo" { path "${wasmPath}"; } }
filters { filter "echo" { type "wasm"; plugin "echo"; failure-mode "closed"; } }
upstreams {
    upstream "origin" { target "127.0.0.1:${origin.port}"; }
    upstream "flaky" { target "127.0.0.1:${deadPort}"; target "127.0.0.1:${origin.port}"; }
}
observability { logging { level "${process.env['WEIR_TEST_LOG'] ?? 'silent'}"; access-log ${process.env['WEIR_TEST_LOG'] ? '#true' : '#false'}; } }
`;
}

/** One request on a connection of its own (so the kernel may pick either thread). */
function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

/** Status answers by thread, from up to `max` fresh connections, until both threads answered. */
async function statusByThread(max = 400): Promise<Map<number, { generation: number }>> {
  const seen = new Map<number, { generation: number }>();
  for (let i = 0; i < max && seen.size < 2; i++) {
    const r = await get('/_/status');
    assert.equal(r.status, 200);
    const s = JSON.parse(r.body) as { thread: number; generation: number };
    seen.set(s.thread, s);
  }
  return seen;
}

before(async () => {
  origin = await startOrigin((req, res, body) => {
    if (req.url?.startsWith('/slow')) setTimeout(() => echo(req, res, body), 800);
    else echo(req, res, body);
  });
  port = await freePort();
  deadPort = await freePort();
  const dir = tmpDir();
  wasmPath = join(dir, 'echo.wasm');
  writeFileSync(wasmPath, await buildEchoComponent());
  file = join(dir, 'weir.kdl');
  writeFileSync(file, config());
  cluster = await startCluster({ configPath: file, logger: quiet, watch: false });
});

after(async () => {
  await cluster?.close();
  await origin?.close();
});

test('two proxy threads serve one port, and /metrics aggregates both', async () => {
  assert.equal(cluster.threads.length, 2);
  const seen = await statusByThread();
  assert.deepEqual([...seen.keys()].sort(), [0, 1], 'both threads answered');
  for (let i = 0; i < 20; i++) assert.equal((await get(`/proxied/${i}`)).status, 200);
  const m = await get('/_/metrics');
  assert.equal(m.status, 200);
  assert.match(m.body, /weir_requests_total\{[^}]*route="status"[^}]*thread="0"[^}]*\} \d+/);
  assert.match(m.body, /weir_requests_total\{[^}]*route="status"[^}]*thread="1"[^}]*\} \d+/);
  assert.match(m.body, /weir_threads 2/);
  // Histograms are summed across threads: one series per route, no thread label.
  const count = /weir_request_duration_seconds_count\{route="default"\} (\d+)/.exec(m.body);
  assert.ok(count && Number(count[1]) >= 20, 'summed histogram');
});

test('a plugin counter is exact across both threads (shared memory store)', async () => {
  // The echo plugin counts requests per route in 1 s windows (counter-add "echo" route).
  const shared = new SharedStore(cluster.sab);
  const n = 40;
  let done = false;
  for (let attempt = 0; attempt < 3 && !done; attempt++) {
    // Start early in a window so the burst fits in it; if it did not, try again.
    for (let i = 0; i < 20 && Date.now() % 1000 > 300; i++) await new Promise((r) => setTimeout(r, 50));
    const win = Math.floor(Date.now() / 1000);
    const before = shared.counterAdd('echo\u0000echo', 0, 1000);
    const statuses = await Promise.all(Array.from({ length: n }, (_, i) => get(`/echo/${i}`).then((r) => r.status)));
    const after = shared.counterAdd('echo\u0000echo', 0, 1000);
    if (Math.floor(Date.now() / 1000) !== win) continue;
    // The echo's select-upstream answers an invalid target on purpose (503); its
    // on-request-headers counted every request first.
    assert.deepEqual(new Set(statuses), new Set([503]));
    assert.equal(after - before, n, 'every request of both threads counted once in shared memory');
    done = true;
  }
  assert.ok(done, 'a burst fitted in one window');
  const m = (await get('/_/metrics')).body;
  for (const t of ['0', '1']) assert.match(m, new RegExp(`weir_requests_total\\{[^}]*route="echo"[^}]*thread="${t}"`), `thread ${t} served echo requests`);
});

test('passive ejection is shared: 5 connect failures in total eject the target in both threads', async () => {
  // Sequential requests: round robin sends every other one to the dead target until the
  // shared streak reaches 5; after that neither thread picks it.
  for (let i = 0; i < 40; i++) await get(`/flaky/${i}`);
  type Status = { thread: number; upstreams: Array<{ name: string; targets: Array<{ address: string; healthy: boolean; failures: number }> }> };
  const seen = new Map<number, { healthy: boolean; failures: number }>();
  for (let i = 0; i < 400 && seen.size < 2; i++) {
    const s = JSON.parse((await get('/_/status')).body) as Status;
    const t = s.upstreams.find((u) => u.name === 'flaky')!.targets.find((x) => x.address.endsWith(`:${deadPort}`))!;
    seen.set(s.thread, t);
  }
  assert.equal(seen.size, 2);
  for (const [thread, t] of seen) assert.equal(t.healthy, false, `thread ${thread} sees the ejection`);
  const own = [...seen.values()].map((t) => t.failures);
  // Each thread counts the failures it saw itself; together exactly the 5 that ejected.
  assert.equal(own[0]! + own[1]!, 5, `failures per thread: ${own.join(', ')}`);
});

test('a crashed thread is replaced, and requests keep being served meanwhile', async () => {
  const victim = cluster.threads[1]!;
  const old = victim.worker;
  await old.terminate();
  // While it is being replaced, the other thread answers every request.
  for (let i = 0; i < 10; i++) assert.equal((await get(`/during/${i}`)).status, 200);
  for (let i = 0; i < 100 && (victim.worker === old || victim.worker.threadId === -1); i++) await new Promise((r) => setTimeout(r, 50));
  assert.notEqual(victim.worker, old);
  await victim.ready;
  const seen = await statusByThread();
  assert.deepEqual([...seen.keys()].sort(), [0, 1], 'the replacement serves');
  assert.match((await get('/_/metrics')).body, /weir_thread_restarts_total\{thread="1"\} 1/);
});

test('reload reaches every thread', async () => {
  writeFileSync(file, config('route "new" { priority 5; matches { path "/new"; }; builtin-handler "health"; }'));
  const r = await cluster.reload();
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.deepEqual(r.threads.map((t) => t.thread), [0, 1]);
  const seen = await statusByThread();
  assert.equal(seen.size, 2);
  for (const [thread, s] of seen) assert.equal(s.generation, r.threads.find((t) => t.thread === thread)!.generation);
  for (let i = 0; i < 10; i++) assert.equal(JSON.parse((await get('/new')).body).status, 'ok');
});

test('shutdown drains requests in flight on every thread, then the port closes', async () => {
  // Slow requests on many connections: both threads hold some.
  const inFlight = Array.from({ length: 12 }, (_, i) => get(`/slow/${i}`));
  // Until each thread reports requests in flight besides the status request itself.
  const busy = new Set<number>();
  for (let i = 0; i < 200 && busy.size < 2; i++) {
    const s = JSON.parse((await get('/_/status')).body) as { thread: number; inFlight: number };
    if (s.inFlight >= 2) busy.add(s.thread);
  }
  assert.equal(busy.size, 2, 'both threads hold slow requests');
  const closing = cluster.close();
  const results = await Promise.all(inFlight);
  assert.deepEqual(results.map((r) => r.status), Array(12).fill(200));
  await closing;
  assert.ok(cluster.threads.every((t) => t.worker.threadId === -1), 'every thread ended');
  await assert.rejects(get('/after'), /ECONNREFUSED/);
});
