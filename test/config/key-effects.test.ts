// Keys that no other test exercised, each shown acting over real sockets (the rows of
// test/config/key-coverage.ts point here).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { once } from 'node:events';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { request } from 'undici';
import { Redis } from 'ioredis';
import { startOrigin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import { available, startRedis } from '../helpers/servers.ts';
import { wire } from '../edge/wire.ts';
import { firstPartyPluginPath } from '../../host/src/assets.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const H = 'Host: t\r\n';

/** An origin on port 0 with a handler; records each TCP connection it accepts and when it closed. */
async function origin(handler: http.RequestListener): Promise<{ port: number; sockets: Array<{ opened: number; closed?: number }>; open: () => number; maxOpen: () => number }> {
  const server = http.createServer(handler);
  const sockets: Array<{ opened: number; closed?: number }> = [];
  let open = 0;
  let maxOpen = 0;
  server.on('connection', (s: net.Socket) => {
    const rec: { opened: number; closed?: number } = { opened: Date.now() };
    sockets.push(rec);
    maxOpen = Math.max(maxOpen, ++open);
    s.once('close', () => {
      rec.closed = Date.now();
      open--;
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return { port: (server.address() as net.AddressInfo).port, sockets, open: () => open, maxOpen: () => maxOpen };
}

/** Polls `cond` every 20 ms until it holds or `ms` pass; returns whether it held. */
async function eventually(cond: () => boolean | Promise<boolean>, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return cond();
}

const listenerOnly = (extra = ''): string => `listeners { listener "main" { address "127.0.0.1:0"; protocol "http"; ${extra} } }\n`;

test('listener request-timeout-secs: a body not complete in time → 408', async () => {
  const o = await startOrigin();
  cleanups.push(() => o.close());
  const { weir } = await startWeirWith(`${listenerOnly('request-timeout-secs 0.6')}limits { header-timeout-ms 300; }
routes { route "r" { upstream "o"; } }
upstreams { upstream "o" { target "127.0.0.1:${o.port}"; } }
`);
  cleanups.push(() => weir.close());
  const port = Number(new URL(weir.url('main')).port);
  const t0 = Date.now();
  const r = await wire(port, `POST /slow HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\npart`, { timeoutMs: 5000 });
  assert.equal(r.responses[0]?.status, 408);
  assert.ok(Date.now() - t0 < 4000, 'well before the 60 s default');
});

test('listener keepalive-timeout-secs: an idle kept-alive connection is closed by the server', async () => {
  const { weir } = await startWeirWith(`${listenerOnly('keepalive-timeout-secs 0.3')}routes { route "h" { builtin-handler "health"; } }\n`);
  cleanups.push(() => weir.close());
  const port = Number(new URL(weir.url('main')).port);
  const t0 = Date.now();
  const r = await wire(port, `GET /h HTTP/1.1\r\n${H}\r\n`, { timeoutMs: 5000 });
  assert.equal(r.responses[0]?.status, 200);
  assert.ok(r.closed, 'closed by the server, not by the test timeout');
  assert.ok(Date.now() - t0 < 4000);
});

test('match props: header name=/value=/regex= and query name=/value=', async () => {
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes {
    route "hdr" { matches { header name="x-env" value="prod"; }; builtin-handler "health"; }
    route "re" { matches { header name="x-ver" regex="^v[0-9]+$"; }; builtin-handler "status"; }
    route "q" { matches { query name="debug" value="1"; }; builtin-handler "ready"; }
}
`);
  cleanups.push(() => weir.close());
  const get = async (path: string, headers: Record<string, string> = {}): Promise<[number, string]> => {
    const res = await request(`${url}${path}`, { headers });
    return [res.statusCode, await res.body.text()];
  };
  assert.deepEqual(await get('/', { 'x-env': 'prod' }), [200, '{"status":"ok"}']);
  assert.equal((await get('/', { 'x-env': 'dev' }))[0], 404);
  assert.deepEqual(await get('/?debug=1'), [200, '{"status":"ready"}']);
  assert.equal((await get('/?debug=2'))[0], 404);
  assert.equal((await get('/', { 'x-ver': 'v12' }))[0], 200);
  assert.equal((await get('/', { 'x-ver': 'beta' }))[0], 404);
});

test('top-level shorthands listener, route, upstream, filter and plugin act as their plural blocks', async () => {
  const o = await startOrigin();
  cleanups.push(() => o.close());
  // The first-party rate-limit component, loaded as a user plugin with its own config block.
  const { url, weir } = await startWeirWith(`listener "main" { address "127.0.0.1:0"; }
route "r" { upstream "o"; filters "hdr" "limit"; }
upstream "o" { target "127.0.0.1:${o.port}"; }
filter "hdr" { type "headers"; request { set "x-shorthand" "yes"; }; }
filter "limit" { type "wasm"; plugin "rl"; }
plugin "rl" { path "${firstPartyPluginPath('rate-limit')}"; config { max-rps 1; burst 1; filter-name "rl"; } }
`);
  cleanups.push(() => weir.close());
  const first = await request(`${url}/x`);
  assert.equal(first.statusCode, 200);
  assert.equal(((await first.body.json()) as { headers: Record<string, string> }).headers['x-shorthand'], 'yes');
  const second = await request(`${url}/x`);
  await second.body.dump();
  assert.equal(second.statusCode, 429, 'the plugin got its config block: max-rps 1, burst 1');
});

test('retry budget-percent and min-retry-concurrency: with both 0 nothing is retried; with a floor of 1 it is', async () => {
  const o = await startOrigin();
  cleanups.push(() => o.close());
  // A port nobody listens on: every attempt there is a connect failure.
  const dead = net.createServer();
  dead.listen(0, '127.0.0.1');
  await once(dead, 'listening');
  const deadPort = (dead.address() as net.AddressInfo).port;
  await new Promise((r) => dead.close(r));
  const config = (budget: number, floor: number): string => `${listenerOnly()}routes {
    route "r" { upstream "o"; policies { retry { max-attempts 2; backoff-ms 1; retry-on "connect-failure"; budget-percent ${budget}; min-retry-concurrency ${floor}; } } }
}
upstreams { upstream "o" { target "127.0.0.1:${deadPort}"; target "127.0.0.1:${o.port}"; } }
`;
  const statuses = async (text: string): Promise<number[]> => {
    const { url, weir } = await startWeirWith(text);
    cleanups.push(() => weir.close());
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await request(`${url}/x`);
      await res.body.dump();
      out.push(res.statusCode);
    }
    return out.sort();
  };
  assert.deepEqual(await statuses(config(0, 0)), [200, 200, 502, 502], 'no retry budget: the dead target\'s requests fail');
  assert.deepEqual(await statuses(config(0, 1)), [200, 200, 200, 200], 'a floor of one retry in flight: retried on the other target');
});

test('connection-pool max-connections caps connections per target', async () => {
  const o = await origin((_req, res) => setTimeout(() => res.end('ok'), 50));
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes { route "r" { upstream "o"; } }
upstreams { upstream "o" { target "127.0.0.1:${o.port}"; connection-pool { max-connections 2; } } }
`);
  cleanups.push(() => weir.close());
  const all = await Promise.all(Array.from({ length: 8 }, () => request(`${url}/x`).then(async (r) => [r.statusCode, await r.body.text()])));
  assert.deepEqual(all, Array(8).fill([200, 'ok']));
  assert.equal(o.maxOpen(), 2, 'eight concurrent requests over at most two connections');
});

test('connection-pool idle-timeout closes an idle upstream connection; max-lifetime retires a busy one', async () => {
  const o = await origin((_req, res) => res.end('ok'));
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes {
    route "idle" { matches { path "/idle"; }; upstream "idle"; }
    route "life" { matches { path "/life"; }; upstream "life"; }
}
upstreams {
    upstream "idle" { target "127.0.0.1:${o.port}"; connection-pool { idle-timeout 0.3; max-lifetime 0; } }
    upstream "life" { target "127.0.0.1:${o.port}"; connection-pool { idle-timeout 60; max-lifetime 0.5; } }
}
`);
  cleanups.push(() => weir.close());
  const t0 = Date.now();
  const a = await request(`${url}/idle`);
  assert.equal(await a.body.text(), 'ok');
  assert.ok(await eventually(() => o.sockets[0]?.closed !== undefined, 5000), 'the idle connection is closed');
  const idleFor = o.sockets[0]!.closed! - t0;
  assert.ok(idleFor >= 250 && idleFor < 4000, `closed after ${idleFor} ms (idle-timeout 0.3 s)`);

  const t1 = Date.now();
  const b = await request(`${url}/life`);
  assert.equal(await b.body.text(), 'ok');
  const life = o.sockets[1]!;
  assert.ok(await eventually(() => life.closed !== undefined, 5000), 'the connection is retired although idle-timeout is 60 s');
  const lived = life.closed! - t1;
  assert.ok(lived < 4000, `retired after ${lived} ms (max-lifetime 0.5 s)`);
  const c = await request(`${url}/life`);
  assert.equal(await c.body.text(), 'ok', 'the next request gets a fresh connection');
});

test('upstream timeouts: connect (TLS handshake never completes), request (headers too late), read (body stalls)', async () => {
  // Accepts TCP and never answers: a TLS handshake to it hangs.
  const muted = new Set<net.Socket>();
  const mute = net.createServer((s) => muted.add(s));
  mute.listen(0, '127.0.0.1');
  await once(mute, 'listening');
  cleanups.push(async () => {
    for (const s of muted) s.destroy();
    await new Promise<void>((r) => mute.close(() => r()));
  });
  const o = await origin((req, res) => {
    if (req.url === '/late') setTimeout(() => res.end('late'), 3000);
    else if (req.url === '/stall') {
      res.writeHead(200, { 'content-length': '10' });
      res.write('abc');
    } else res.end('ok');
  });
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes {
    route "c" { matches { path "/connect"; }; upstream "tls"; }
    route "r" { matches { path-prefix "/"; }; upstream "o"; }
}
upstreams {
    upstream "tls" { target "127.0.0.1:${(mute.address() as net.AddressInfo).port}"; tls { verify #false; }; timeouts { connect 0.3; } }
    upstream "o" { target "127.0.0.1:${o.port}"; timeouts { request 0.3; read 0.3; } }
}
`);
  cleanups.push(() => weir.close());
  const timed = async (path: string): Promise<[number, number, string]> => {
    const t0 = Date.now();
    const res = await request(`${url}${path}`);
    const body = await res.body.text().catch((e: Error) => `aborted: ${e.message}`);
    return [res.statusCode, Date.now() - t0, body];
  };
  const [cs, ct, cb] = await timed('/connect');
  // As nginx: a connect timeout is a gateway timeout. The upstream's request timeout is the 60 s default.
  assert.equal(cs, 504, cb);
  assert.match(cb, /WEIR_ERR_UPSTREAM_TIMEOUT/);
  assert.ok(ct < 2500, `connect gave up after ${ct} ms`);
  const [rs, rt, rb] = await timed('/late');
  assert.equal(rs, 504, rb);
  assert.ok(rt < 2500, `no headers: gave up after ${rt} ms`);
  const [ss, st, sb] = await timed('/stall');
  assert.equal(ss, 200, 'headers came in time');
  assert.ok(sb.startsWith('aborted') || sb.length < 10, `the stalled body is cut: ${sb}`);
  assert.ok(st < 2500, `stalled body cut after ${st} ms`);
});

test('health-check: type http, path, interval-secs, timeout-secs, thresholds and expected-status decide which targets get traffic', async () => {
  let bState: 'wrong-status' | 'hang' | 'good' = 'wrong-status';
  const hits = { a: 0, b: 0 };
  const a = await origin((req, res) => {
    if (req.url === '/hc') return void res.writeHead(204).end();
    hits.a++;
    res.end('a');
  });
  const b = await origin((req, res) => {
    if (req.url === '/hc') {
      if (bState === 'good') return void res.writeHead(204).end();
      if (bState === 'hang') return; // never answers: the check times out
      return void res.writeHead(200).end('200 is not in expected-status');
    }
    hits.b++;
    res.end('b');
  });
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes {
    route "status" { matches { path "/_status"; }; builtin-handler "status"; }
    route "r" { upstream "o"; }
}
upstreams {
    upstream "o" {
        target "127.0.0.1:${a.port}"
        target "127.0.0.1:${b.port}"
        health-check { type "http"; path "/hc"; interval-secs 0.05; timeout-secs 0.2; healthy-threshold 2; unhealthy-threshold 2; expected-status 204; }
    }
}
`);
  cleanups.push(() => weir.close());
  const healthOf = async (): Promise<boolean[]> => {
    const res = await request(`${url}/_status`);
    const s = (await res.body.json()) as { upstreams: Array<{ name: string; targets: Array<{ healthy: boolean }> }> };
    return s.upstreams.find((u) => u.name === 'o')!.targets.map((t) => t.healthy);
  };
  assert.ok(await eventually(async () => JSON.stringify(await healthOf()) === '[true,false]'), 'b answers 200 on /hc, which expected-status 204 does not accept');
  hits.a = hits.b = 0;
  for (let i = 0; i < 10; i++) await (await request(`${url}/x`)).body.dump();
  assert.deepEqual(hits, { a: 10, b: 0 }, 'an unhealthy target gets no traffic');
  bState = 'good';
  assert.ok(await eventually(async () => JSON.stringify(await healthOf()) === '[true,true]'), 'b recovers after healthy-threshold good checks');
  hits.a = hits.b = 0;
  for (let i = 0; i < 10; i++) await (await request(`${url}/x`)).body.dump();
  assert.ok(hits.b > 0 && hits.a > 0, `both get traffic again: ${JSON.stringify(hits)}`);
  bState = 'hang';
  assert.ok(await eventually(async () => JSON.stringify(await healthOf()) === '[true,false]'), 'a check that outlives timeout-secs fails');
});

test('health-check type "tcp": a target whose port is closed is unhealthy, one that accepts is healthy', async () => {
  const a = await origin((_req, res) => res.end('a'));
  const gone = net.createServer();
  gone.listen(0, '127.0.0.1');
  await once(gone, 'listening');
  const goneAt = (gone.address() as net.AddressInfo).port;
  await new Promise((r) => gone.close(r));
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes {
    route "status" { matches { path "/_status"; }; builtin-handler "status"; }
}
upstreams {
    upstream "o" {
        target "127.0.0.1:${a.port}"
        target "127.0.0.1:${goneAt}"
        health-check { type "tcp"; interval-secs 0.05; timeout-secs 0.2; unhealthy-threshold 1; }
    }
}
`);
  cleanups.push(() => weir.close());
  assert.ok(await eventually(async () => {
    const s = (await (await request(`${url}/_status`)).body.json()) as { upstreams: Array<{ targets: Array<{ healthy: boolean }> }> };
    return JSON.stringify(s.upstreams[0]!.targets.map((t) => t.healthy)) === '[true,false]';
  }));
});

test('rate-limit status-code: the rejection uses it', async () => {
  const o = await startOrigin();
  cleanups.push(() => o.close());
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes { route "r" { upstream "o"; filters "rl"; } }
upstreams { upstream "o" { target "127.0.0.1:${o.port}"; } }
filters { filter "rl" { type "rate-limit"; max-rps 1; burst 1; status-code 503; } }
`);
  cleanups.push(() => weir.close());
  const codes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await request(`${url}/x`);
    await r.body.dump();
    codes.push(r.statusCode);
  }
  assert.deepEqual(codes, [200, 503, 503]);
});

test('rate-limit redis-pool-size: that many connections to redis', { skip: available('redis-server') ? false : 'redis-server is not installed' }, async () => {
  const redis = await startRedis();
  cleanups.push(() => redis.stop());
  const admin = new Redis(redis.url);
  cleanups.push(async () => void admin.disconnect());
  const o = await startOrigin();
  cleanups.push(() => o.close());
  const clients = async (): Promise<number> => String(await admin.client('LIST')).trim().split('\n').length - 1; // minus the admin connection
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes { route "r" { upstream "o"; filters "rl"; } }
upstreams { upstream "o" { target "127.0.0.1:${o.port}"; } }
filters { filter "rl" { type "rate-limit"; max-rps 100; backend "redis"; redis-url "${redis.url}"; redis-pool-size 3; } }
`);
  cleanups.push(() => weir.close());
  for (let i = 0; i < 6; i++) await (await request(`${url}/x`)).body.dump();
  assert.ok(await eventually(async () => (await clients()) === 3), `redis sees ${await clients()} connections from Weir`);
});

test('metrics address and path: a separate listener serves the metrics on that path only', async () => {
  const { weir } = await startWeirWith(`${listenerOnly()}routes { route "h" { builtin-handler "health"; } }
observability { metrics { enabled #true; address "127.0.0.1:0"; path "/prom"; } }
`);
  cleanups.push(() => weir.close());
  const addr = weir.metricsAddress()!;
  const base = `http://${addr.host}:${addr.port}`;
  const m = await request(`${base}/prom`);
  assert.equal(m.statusCode, 200);
  assert.match(await m.body.text(), /# TYPE weir_/);
  const other = await request(`${base}/metrics`);
  await other.body.dump();
  assert.equal(other.statusCode, 404);
});

test('graceful-shutdown-timeout-secs bounds how long a shutdown waits for a request in flight', async () => {
  const o = await origin(() => {}); // never answers
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes { route "r" { upstream "o"; } }
upstreams { upstream "o" { target "127.0.0.1:${o.port}"; } }
system { graceful-shutdown-timeout-secs 0.5; }
`);
  const pending = request(`${url}/hang`).then((r) => r.body.text()).catch(() => 'cut');
  assert.ok(await eventually(() => o.sockets.length === 1), 'the request reached the origin');
  const t0 = Date.now();
  await weir.close();
  const took = Date.now() - t0;
  assert.ok(took >= 400 && took < 4000, `shutdown waited ${took} ms (timeout 0.5 s)`);
  await pending;
});

/** Runs `weir run -c` until a line matching `until` is written to stdout, then stops it. */
async function runUntil(config: string, until: RegExp, ms = 30_000): Promise<string> {
  const dir = tmpDir();
  const file = join(dir, 'weir.kdl');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, config);
  const child = spawn(process.execPath, [new URL('../../host/bin/weir.ts', import.meta.url).pathname, 'run', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  await eventually(() => until.test(out) || child.exitCode !== null, ms);
  child.kill('SIGKILL');
  await once(child, 'exit').catch(() => {});
  return out;
}

test('logging level and format: json lines at info, pretty text, nothing below the level', async () => {
  const base = `${listenerOnly()}routes { route "h" { builtin-handler "health"; } }\n`;
  const json = await runUntil(`${base}observability { logging { level "info"; format "json"; access-log #false; } }\n`, /"msg":"weir started"/);
  const started = json.split('\n').find((l) => l.includes('"msg":"weir started"'))!;
  assert.equal(JSON.parse(started).level, 'info');
  const pretty = await runUntil(`${base}observability { logging { level "info"; format "pretty"; access-log #false; } }\n`, /weir started/);
  const line = pretty.split('\n').find((l) => l.includes('weir started'))!;
  assert.throws(() => JSON.parse(line), 'pretty lines are not JSON');
  assert.match(line, /INFO/);
  // level "error": the info lines never come (bounded wait, then the output is checked).
  const quiet = await runUntil(`${base}observability { logging { level "error"; access-log #false; } }\n`, /weir started/, 8000);
  assert.doesNotMatch(quiet, /weir started|listening/);
});

test('access-log "file": one JSON line per request in that file', async () => {
  const file = join(tmpDir(), 'access.log');
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes { route "h" { builtin-handler "health"; } }
observability { logging { access-log "${file}"; } }
`, { accessLog: undefined });
  cleanups.push(() => weir.close());
  await (await request(`${url}/logged-path`)).body.dump();
  assert.ok(await eventually(() => existsSync(file) && readFileSync(file, 'utf8').includes('/logged-path')), 'the request is logged');
  const line = readFileSync(file, 'utf8').trim().split('\n').find((l) => l.includes('/logged-path'))!;
  assert.equal(JSON.parse(line).status ?? JSON.parse(line).res?.statusCode ?? 200, 200);
});

test('limits http2 max-session-memory-mb: past it, new streams are refused (ENHANCE_YOUR_CALM); with room they are not', async () => {
  const o = await origin(() => {}); // holds every request: the streams stay open
  const refusedOf = async (mb: number): Promise<number> => {
    const { url, weir } = await startWeirWith(`listeners { listener "main" { address "127.0.0.1:0"; protocol "h2c"; } }
routes { route "r" { upstream "o"; } }
upstreams { upstream "o" { target "127.0.0.1:${o.port}"; } }
limits { http2 { max-concurrent-streams 5000; max-session-memory-mb ${mb}; } }
`);
    cleanups.push(() => weir.close());
    const client = http2.connect(url);
    client.on('error', () => {});
    const pad = 'x'.repeat(2000);
    let refused = 0;
    const streams = Array.from({ length: 600 }, (_, i) => {
      const s = client.request({ ':path': `/s${i}`, 'x-pad': pad });
      s.on('error', () => refused++);
      s.end();
      return s;
    });
    await eventually(() => refused > 0, 3000);
    for (const s of streams) s.close();
    client.destroy();
    return refused;
  };
  assert.ok((await refusedOf(1)) > 0, 'with 1 MB, some of 600 open streams with 2 KB headers are refused');
  assert.equal(await refusedOf(256), 0, 'with 256 MB, none is');
});

test('url-rewrite prefix: replace-prefix-match replaces the filter\'s own prefix, other paths pass unchanged', async () => {
  const o = await startOrigin();
  cleanups.push(() => o.close());
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes { route "r" { upstream "o"; filters "v2"; } }
upstreams { upstream "o" { target "127.0.0.1:${o.port}"; } }
filters { filter "v2" { type "url-rewrite"; prefix "/api/"; replace-prefix-match "/v2/"; } }
`);
  cleanups.push(() => weir.close());
  const path = async (p: string): Promise<string> => ((await (await request(`${url}${p}`)).body.json()) as { url: string }).url;
  assert.equal(await path('/api/users'), '/v2/users');
  assert.equal(await path('/other/api/x'), '/other/api/x');
});

test('retry max-backoff-ms caps the exponential backoff: ten attempts with 100 ms caps finish fast', async () => {
  let seen = 0;
  const o = await origin((_req, res) => {
    seen++;
    res.writeHead(503).end();
  });
  const { url, weir } = await startWeirWith(`${listenerOnly()}routes {
    route "r" { upstream "o"; policies { retry { max-attempts 10; backoff-ms 100; max-backoff-ms 100; retry-on "503"; } } }
}
upstreams { upstream "o" { target "127.0.0.1:${o.port}"; } }
`);
  cleanups.push(() => weir.close());
  const t0 = Date.now();
  const res = await request(`${url}/x`);
  await res.body.dump();
  const took = Date.now() - t0;
  assert.equal(res.statusCode, 503);
  assert.equal(seen, 10, 'every attempt reached the origin');
  // Uncapped, the 9 backoffs would be up to 100·(2⁹−1) ms ≈ 51 s (about 25 s on average).
  assert.ok(took < 2500, `ten attempts took ${took} ms with backoffs capped at 100 ms`);
});
