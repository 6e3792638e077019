// "No key without an effect": refused keys fail validate and run at their location, and the
// keys made to act (system/server max-connections, policies failure-mode, metrics enabled)
// act over real sockets.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { startOrigin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import { NO_BODY, type Phase } from '../../host/src/pipeline/phases.ts';
import { bad, expectDiag, ok } from './helpers.ts';
import { BALANCERS } from '../../host/src/config/schema.ts';

const WEIR = new URL('../../host/bin/weir.ts', import.meta.url).pathname;
const cli = (...args: string[]) => spawnSync(process.execPath, [WEIR, ...args], { encoding: 'utf8', timeout: 60_000 });

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

function file(text: string): string {
  const f = join(tmpDir(), 'weir.kdl');
  writeFileSync(f, text);
  return f;
}

const BASE = `listeners { listener "main" { address "127.0.0.1:0"; } }
routes { route "h" { builtin-handler "health"; } }
`;

/** Each refused construct, the line:column it is reported at, and words of its sentence. */
const REFUSED: Array<[string, string, number, number, RegExp]> = [
  ['geo cache-ttl-secs', `${BASE}filters { filter "g" { type "geo"; action "log-only"; cache-ttl-secs 60; } }\n`, 3, 55, /`cache-ttl-secs` is refused: lookups are cached per address/],
  ['geo database-type "ip2location"', `${BASE}filters { filter "g" { type "geo"; action "log-only"; database-type "ip2location"; } }\n`, 3, 69, /`database-type` `ip2location` is refused: Weir reads MaxMind-format databases only/],
  ['load-balancing "sticky"', `${BASE}upstreams { upstream "u" { target "127.0.0.1:1"; load-balancing "sticky"; } }\n`, 3, 65, /`load-balancing` `sticky` is refused: .*`round_robin`.*`p2c`/],
  ['connection-pool max-idle', `${BASE}upstreams { upstream "u" { target "127.0.0.1:1"; connection-pool { max-idle 4; }; } }\n`, 3, 68, /`max-idle` is refused: .*`idle-timeout` instead/],
];

for (const [what, text, line, column, message] of REFUSED) {
  test(`refused: ${what} → WEIR_ERR_CONFIG_UNSUPPORTED at ${line}:${column}, in validate and in run`, async () => {
    const diags = await bad(text);
    assert.deepEqual(diags.map((d) => d.code), ['WEIR_ERR_CONFIG_UNSUPPORTED']);
    assert.match(expectDiag(diags, 'WEIR_ERR_CONFIG_UNSUPPORTED', line, column).message, message);
    const f = file(text);
    const v = cli('validate', f);
    assert.equal(v.status, 1);
    assert.match(v.stderr, new RegExp(`weir\\.kdl:${line}:${column}: error WEIR_ERR_CONFIG_UNSUPPORTED: `));
    assert.match(v.stderr, /: 1 error\(s\)\n$/);
    const r = cli('run', '-c', f);
    assert.equal(r.status, 1, 'weir run refuses what validate refuses');
    assert.match(r.stderr, new RegExp(`weir\\.kdl:${line}:${column}: error WEIR_ERR_CONFIG_UNSUPPORTED: `));
  });
}

test('the algorithms that run are accepted; `weighted` is round_robin', async () => {
  for (const lb of BALANCERS) {
    const c = await ok(`${BASE}upstreams { upstream "u" { target "127.0.0.1:1"; target "127.0.0.1:2"; load-balancing "${lb}"; } }\n`);
    assert.equal(c.upstreams.get('u')!.loadBalancing, lb === 'weighted' ? 'round_robin' : lb);
  }
  const typo = await bad(`${BASE}upstreams { upstream "u" { target "127.0.0.1:1"; load-balancing "p2"; } }\n`);
  const d = expectDiag(typo, 'WEIR_ERR_CONFIG_VALUE', 3, 65);
  assert.match(d.message, /is not one of `round_robin`(, `[a-z_0-9]+`)+$/);
  for (const b of BALANCERS) assert.ok(d.message.includes(`\`${b}\``), `${b} is listed: ${d.message}`);
});

test('`server {}` and `system {}` together are refused', async () => {
  const diags = await bad(`${BASE}system { max-connections 5; }\nserver { max-connections 6; }\n`);
  const d = expectDiag(diags, 'WEIR_ERR_CONFIG_DUPLICATE', 4, 1);
  assert.match(d.message, /`server` and `system` are the same block/);
});

/** Opens a connection and sends a request: admitted = it got a 200 back; refused = closed without one. */
async function tryConnect(port: number): Promise<{ admitted: boolean; socket: net.Socket }> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write('GET /h HTTP/1.1\r\nhost: t\r\n\r\n');
  return new Promise((resolve) => {
    let data = '';
    const timer = setTimeout(() => resolve({ admitted: false, socket }), 10_000);
    socket.on('data', (d: Buffer) => {
      data += d.toString();
      if (data.includes('\r\n\r\n')) {
        clearTimeout(timer);
        resolve({ admitted: data.startsWith('HTTP/1.1 200'), socket });
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ admitted: false, socket });
    });
  });
}

for (const [block, key] of [['system', 'max-connections'], ['server', 'max-connections'], ['limits', 'max-total-connections']] as const) {
  test(`\`${block} ${key} 1\` caps connections over all listeners (a 2nd one is closed, a slot frees on close)`, async () => {
    const { weir } = await startWeirWith(`listeners {
    listener "a" { address "127.0.0.1:0"; }
    listener "b" { address "127.0.0.1:0"; }
}
routes { route "h" { builtin-handler "health"; } }
${block} { ${key} 1; }
`);
    cleanups.push(() => weir.close());
    const [a, b] = ['a', 'b'].map((n) => Number(new URL(weir.url(n)).port));
    const first = await tryConnect(a!);
    assert.equal(first.admitted, true);
    const second = await tryConnect(b!);
    assert.equal(second.admitted, false, 'the 2nd connection, on another listener, is closed');
    const third = await tryConnect(a!);
    assert.equal(third.admitted, false, 'the same listener refuses too');
    first.socket.destroy();
    // The slot frees when the server sees the close; poll (bounded) until it does.
    let again = { admitted: false, socket: undefined as net.Socket | undefined };
    for (let i = 0; i < 50 && !again.admitted; i++) again = await tryConnect(b!);
    assert.equal(again.admitted, true, 'a connection is admitted again after the first closed');
    again.socket?.destroy();
  });
}

test('`limits max-connections-per-client 1` caps the connections of one peer address over all listeners', async () => {
  const { weir } = await startWeirWith(`listeners {
    listener "a" { address "127.0.0.1:0"; }
    listener "b" { address "127.0.0.1:0"; }
}
routes { route "h" { builtin-handler "health"; } }
limits { max-connections-per-client 1; }
`);
  cleanups.push(() => weir.close());
  const [a, b] = ['a', 'b'].map((n) => Number(new URL(weir.url(n)).port));
  const first = await tryConnect(a!);
  assert.equal(first.admitted, true);
  assert.equal((await tryConnect(b!)).admitted, false, 'the same peer on another listener is closed');
  first.socket.destroy();
  let again = { admitted: false, socket: undefined as net.Socket | undefined };
  for (let i = 0; i < 50 && !again.admitted; i++) again = await tryConnect(b!);
  assert.equal(again.admitted, true, 'admitted again once its first connection closed');
  again.socket?.destroy();
});

test('`limits max-connections` caps each listener; `system max-connections` their sum', async () => {
  const { weir } = await startWeirWith(`listeners {
    listener "a" { address "127.0.0.1:0"; }
    listener "b" { address "127.0.0.1:0"; }
}
routes { route "h" { builtin-handler "health"; } }
system { max-connections 10; }
limits { max-connections 1; }
`);
  cleanups.push(() => weir.close());
  const [a, b] = ['a', 'b'].map((n) => Number(new URL(weir.url(n)).port));
  const first = await tryConnect(a!);
  assert.equal(first.admitted, true);
  assert.equal((await tryConnect(a!)).admitted, false, 'a 2nd connection on the same listener is closed');
  const other = await tryConnect(b!);
  assert.equal(other.admitted, true, 'another listener has its own cap');
  first.socket.destroy();
  other.socket.destroy();
});

test('policies failure-mode is the default of the route\'s filters; a filter\'s own failure-mode wins', async () => {
  const origin = await startOrigin();
  cleanups.push(() => origin.close());
  const { weir, url } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
routes {
    route "open" { priority 1; matches { path-prefix "/open"; }; upstream "o"; filters "broken"; policies { failure-mode "open"; }; }
    route "closed" { priority 1; matches { path-prefix "/closed"; }; upstream "o"; filters "broken"; policies { failure-mode "closed"; }; }
    route "default" { priority 1; matches { path-prefix "/default"; }; upstream "o"; filters "broken"; }
    route "own-closed" { priority 1; matches { path-prefix "/own-closed"; }; upstream "o"; filters "broken-closed"; policies { failure-mode "open"; }; }
    route "own-open" { priority 1; matches { path-prefix "/own-open"; }; upstream "o"; filters "broken-open"; policies { failure-mode "closed"; }; }
}
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
filters {
    filter "broken" { type "url-rewrite"; }
    filter "broken-closed" { type "url-rewrite"; failure-mode "closed"; }
    filter "broken-open" { type "url-rewrite"; failure-mode "open"; }
}`,
    {
      extendFilters: (registry) => {
        // A filter that always fails, behind the url-rewrite type the schema knows.
        registry.register('url-rewrite', (cfg): Phase => ({
          name: cfg.name,
          kind: 'test:broken',
          failureMode: cfg.failureMode,
          requestBody: NO_BODY,
          responseBody: NO_BODY,
          onRequestHeaders() {
            throw new Error('boom');
          },
        }));
      },
    },
  );
  cleanups.push(() => weir.close());
  const status = async (path: string): Promise<[number, string | undefined]> => {
    const res = await request(`${url}${path}`);
    const body = (await res.body.json()) as { error?: { code: string } };
    return [res.statusCode, body.error?.code];
  };
  assert.deepEqual(await status('/open'), [200, undefined], 'route open: the failing filter is skipped');
  assert.deepEqual(await status('/closed'), [500, 'WEIR_ERR_FILTER_FAILED'], 'route closed: the request fails');
  assert.deepEqual(await status('/default'), [500, 'WEIR_ERR_FILTER_FAILED'], 'the default is closed');
  assert.deepEqual(await status('/own-closed'), [500, 'WEIR_ERR_FILTER_FAILED'], 'the filter\'s closed beats the route\'s open');
  assert.deepEqual(await status('/own-open'), [200, undefined], 'the filter\'s open beats the route\'s closed');
});

test('metrics enabled #false: a metrics route or a metrics address is refused; enabled, both serve', async () => {
  const off = `observability {\n    metrics {\n        enabled #false\n        address "127.0.0.1:0"\n    }\n}\n`;
  const diags = await bad(`listeners { listener "main" { address "127.0.0.1:0"; } }\nroutes { route "m" { builtin-handler "metrics"; } }\n${off}`);
  assert.match(expectDiag(diags, 'WEIR_ERR_CONFIG_CONSTRAINT', 2, 22).message, /route `m` serves metrics, but metrics are disabled \(`enabled #false` at .*:5:9\)/);
  assert.match(expectDiag(diags, 'WEIR_ERR_CONFIG_CONSTRAINT', 6, 9).message, /metrics are disabled .* so a metrics `address` would serve nothing/);
  await assert.rejects(startWeirWith(`listeners { listener "main" { address "127.0.0.1:0"; } }\nroutes { route "m" { builtin-handler "metrics"; } }\nobservability { metrics { enabled #false; } }\n`), /WEIR_ERR_CONFIG_CONSTRAINT/);

  // Disabled without a route or address: nothing answers with metrics.
  const { weir, url } = await startWeirWith(`listeners { listener "main" { address "127.0.0.1:0"; } }\nroutes { route "h" { matches { path "/h"; }; builtin-handler "health"; } }\nobservability { metrics { enabled #false; } }\n`);
  cleanups.push(() => weir.close());
  const res = await request(`${url}/metrics`);
  assert.equal(res.statusCode, 404);
  assert.doesNotMatch(await res.body.text(), /weir_/);

  // Enabled: the route serves Prometheus text.
  const on = await startWeirWith(`listeners { listener "main" { address "127.0.0.1:0"; } }\nroutes { route "m" { builtin-handler "metrics"; } }\nobservability { metrics { enabled #true; } }\n`);
  cleanups.push(() => on.weir.close());
  const m = await request(`${on.url}/metrics`);
  assert.equal(m.statusCode, 200);
  assert.match(await m.body.text(), /# TYPE weir_/);
});

test('weir validate counts warnings apart from errors in its summary', () => {
  // One error (unknown upstream) and one warning (a route with neither upstream nor builtin-handler).
  const text = `listeners { listener "main" { address "127.0.0.1:0"; } }
routes {
    route "a" { upstream "missing"; }
    route "b" { matches { path "/b"; } }
}
`;
  const f = file(text);
  const r = cli('validate', f);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /warning WEIR_ERR_CONFIG_MISSING: route `b`/);
  assert.match(r.stderr, new RegExp(`${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: 1 error\\(s\\), 1 warning\\(s\\)\n$`));
  const warnOnly = cli('validate', file(`listeners { listener "main" { address "127.0.0.1:0"; } }\nroutes { route "b" { matches { path "/b"; } } }\n`));
  assert.equal(warnOnly.status, 0, 'warnings alone do not fail validate');
  assert.match(warnOnly.stdout, /: ok \(/);
});

test('weir validate and weir run load every plugin and report its config errors at the node', async () => {
  const { firstPartyPluginPath } = await import('../../host/src/assets.ts');
  const rl = firstPartyPluginPath('rate-limit');
  const geo = firstPartyPluginPath('geo');
  const text = `listeners { listener "main" { address "127.0.0.1:0"; } }
routes { route "r" { upstream "o"; filters "limit" "mine" "geo-mine"; } }
upstreams { upstream "o" { target "127.0.0.1:1"; } }
filters {
    filter "limit" {
        type "rate-limit"
        max-rps 10
        key "bogus"
    }
    filter "mine" { type "wasm"; plugin "rl"; }
    filter "geo-mine" { type "wasm"; plugin "g"; }
}
plugins {
    plugin "rl" {
        path "${rl}"
        config {
            max-rps 0
        }
    }
    plugin "g" {
        path "${geo}"
        config { action "block"; }
    }
}
`;
  const f = file(text);
  for (const args of [['validate', f], ['run', '-c', f]]) {
    const r = cli(...args);
    assert.equal(r.status, 1, `weir ${args[0]} fails`);
    // A first-party filter's key, a user plugin's key, and a plugin block whose error names no node of it.
    assert.match(r.stderr, /weir\.kdl:8:9: error WEIR_ERR_PLUGIN_CONFIG: plugin rate-limit:limit rejected its config: key must be/);
    assert.match(r.stderr, /weir\.kdl:17:13: error WEIR_ERR_PLUGIN_CONFIG: plugin rl rejected its config: max-rps must be a positive number/);
    assert.match(r.stderr, /weir\.kdl:22:9: error WEIR_ERR_PLUGIN_CONFIG: plugin g rejected its config: countries is required for action block/);
    assert.match(r.stderr, /: 3 error\(s\)\n$/);
  }
  const skipped = cli('validate', '--skip-file-checks', f);
  assert.equal(skipped.status, 0, 'with --skip-file-checks the plugin files are not loaded');
});

test('cross-key constraints: request vs header timeout (listener or limits), backoff vs max-backoff, metrics address vs a listener', async () => {
  // Reproduced first: this file made `weir run` die with ERR_OUT_OF_RANGE from node:http.
  const limits = await bad(`${BASE}limits {\n    header-timeout-ms 5000\n    request-timeout-ms 1000\n}\n`);
  assert.match(expectDiag(limits, 'WEIR_ERR_CONFIG_CONSTRAINT', 5, 24).message, /`limits request-timeout-ms` \(1000 ms\) is shorter than `limits header-timeout-ms` \(5000 ms\)/);
  const listener = await bad(`listeners {\n    listener "main" { address "127.0.0.1:0"; request-timeout-secs 2; }\n}\nlimits { header-timeout-ms 3000; }\n`);
  assert.match(expectDiag(listener, 'WEIR_ERR_CONFIG_CONSTRAINT', 2, 67).message, /listener `main` `request-timeout-secs` \(2000 ms\) is shorter than `limits header-timeout-ms` \(3000 ms\)/);
  await ok(`listeners { listener "main" { address "127.0.0.1:0"; request-timeout-secs 3; } }\nlimits { header-timeout-ms 3000; }\n`);
  const f = file(`${BASE}limits {\n    header-timeout-ms 5000\n    request-timeout-ms 1000\n}\n`);
  const r = cli('run', '-c', f);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /weir\.kdl:5:24: error WEIR_ERR_CONFIG_CONSTRAINT: /);
  assert.doesNotMatch(r.stderr, /ERR_OUT_OF_RANGE/);

  const backoff = await bad(`${BASE}routes { route "r" { upstream "o"; policies { retry { backoff-ms 500; max-backoff-ms 100; } } } }\nupstreams { upstream "o" { target "127.0.0.1:1"; } }\n`);
  assert.match(backoff.find((d) => d.code === 'WEIR_ERR_CONFIG_CONSTRAINT')!.message, /`backoff-ms` \(500 ms\) is larger than `max-backoff-ms` \(100 ms\)/);

  const metrics = await bad(`listeners { listener "main" { address "127.0.0.1:9464"; } }\nobservability { metrics { address "127.0.0.1:9464"; } }\n`);
  assert.match(expectDiag(metrics, 'WEIR_ERR_CONFIG_CONSTRAINT', 2, 35).message, /metrics `address` 127\.0\.0\.1:9464 is also the address of listener `main`/);

  const frac = await bad(`${BASE}limits { header-timeout-ms 500.5; }\n`);
  assert.match(expectDiag(frac, 'WEIR_ERR_CONFIG_VALUE', 3, 28).message, /must be a whole number of milliseconds/);
});

test('weir simulate names the balancer the proxy runs: round robin (first pick), p2c (per request), one target (none)', () => {
  const text = `${BASE}routes {
    route "rr" { priority 3; matches { path-prefix "/rr"; }; upstream "rr"; }
    route "p2c" { priority 3; matches { path-prefix "/p2c"; }; upstream "p2c"; }
    route "one" { priority 3; matches { path-prefix "/one"; }; upstream "one"; }
}
upstreams {
    upstream "rr" { target "127.0.0.1:9001" weight=1; target "127.0.0.1:9002" weight=3; load-balancing "weighted"; }
    upstream "p2c" { target "127.0.0.1:9001"; target "127.0.0.1:9002"; load-balancing "p2c"; }
    upstream "one" { target "127.0.0.1:9003"; load-balancing "p2c"; }
}
`;
  const f = file(text);
  const rr = cli('simulate', f, 'GET', '/rr');
  assert.match(rr.stdout, /upstream: rr \(round_robin, 2 targets\)/);
  assert.match(rr.stdout, /target: 127\.0\.0\.1:9002 — first pick of plugins\/lb smooth weighted round robin/);
  const p2c = cli('simulate', f, 'GET', '/p2c');
  assert.match(p2c.stdout, /target: decided per request by plugins\/lb p2c/);
  const one = cli('simulate', f, 'GET', '/one');
  assert.match(one.stdout, /target: 127\.0\.0\.1:9003 — the only target \(no balancer runs\)/);
});

test('keys that another key\'s value makes inert are refused: redis-*/memcached-* with another backend, delay-max-ms without delay, health-check path with type tcp', async () => {
  const diags = await bad(`${BASE}filters {
    filter "rl" {
        type "rate-limit"
        max-rps 10
        redis-url "redis://127.0.0.1:6379"
        delay-max-ms 200
    }
}
upstreams {
    upstream "u" {
        target "127.0.0.1:1"
        health-check { type "tcp"; path "/hc"; }
    }
}
`);
  assert.match(expectDiag(diags, 'WEIR_ERR_CONFIG_CONSTRAINT', 7, 9).message, /`redis-url` in filter `rl` has no effect with `backend "local"`/);
  assert.match(expectDiag(diags, 'WEIR_ERR_CONFIG_CONSTRAINT', 8, 9).message, /`delay-max-ms` in filter `rl` has no effect with `on-limit "reject"`/);
  assert.match(expectDiag(diags, 'WEIR_ERR_CONFIG_CONSTRAINT', 14, 36).message, /health-check `path` has no effect with `type "tcp"`/);
  await ok(`${BASE}filters { filter "rl" { type "rate-limit"; max-rps 10; backend "redis"; redis-url "redis://127.0.0.1:6379"; on-limit "delay"; delay-max-ms 200; } }\n`);
});
