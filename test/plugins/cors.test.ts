// The first-party cors filter (plugins/cors) through the real proxy: preflights answered by
// Weir (the upstream sees none), CORS headers on actual requests from allowed origins only,
// wildcard subdomain patterns, refused methods and headers; its cases.json; config errors
// from `weir validate` at file:line:column.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { firstPartyPluginPath } from '../../host/src/assets.ts';
import { runPluginTests } from '../../plugin-abi/src/harness/cases.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

const WEIR = new URL('../../host/bin/weir.ts', import.meta.url).pathname;
const CASES = new URL('../../plugins/cors/cases.json', import.meta.url).pathname;

let origin: Origin;
const weirs: Weir[] = [];

before(async () => {
  await buildFirstPartyPlugins();
  origin = await startOrigin((req, res) => {
    // An upstream with CORS headers of its own: the filter decides them instead.
    const h: Record<string, string> = { 'x-request-id-echo': 'r1', 'access-control-allow-origin': '*' };
    if (req.url === '/vary') h['vary'] = 'Accept-Encoding';
    res.writeHead(200, h).end('ok');
  });
});

after(async () => {
  for (const w of weirs) await w.close();
  await origin.close();
});

const FILTERS = `
filters {
    filter "cors" {
        type "cors"
        allow-origins "https://app.example" "https://*.example.org"
        allow-methods "GET" "POST"
        allow-headers "authorization" "content-type"
        expose-headers "x-request-id"
        allow-credentials #true
        max-age-secs 600
    }
    filter "open" { type "cors"; allow-origins "*"; allow-headers "*"; }
    filter "limit" { type "rate-limit"; max-rps 0.001; burst 1; }
}`;

async function weir(): Promise<string> {
  const { weir: w, url } = await startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
${FILTERS}
routes {
    route "open" { matches { path-prefix "/open"; }; upstream "o"; filters "open"; }
    route "limited" { matches { path-prefix "/limited"; }; upstream "o"; filters "cors" "limit"; }
    route "r" { matches { path-prefix "/"; }; upstream "o"; filters "cors"; }
}
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }`);
  weirs.push(w);
  return url;
}

let base: Promise<string> | undefined;
const url = (): Promise<string> => (base ??= weir());

async function call(path: string, method: string, headers: Record<string, string>) {
  const before = origin.seen.length;
  const res = await request(`${await url()}${path}`, { method: method as 'GET', headers });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, upstreamCalls: origin.seen.length - before };
}

const preflight = (o: string, method: string, headers?: string, path = '/api') =>
  call(path, 'OPTIONS', { origin: o, 'access-control-request-method': method, ...(headers ? { 'access-control-request-headers': headers } : {}) });

const corsHeaders = (h: Record<string, unknown>): string[] => Object.keys(h).filter((k) => k.startsWith('access-control-')).sort();

test('cors: a preflight from an allowed origin is answered 204 by the proxy with the allow headers; the upstream sees nothing', async () => {
  const r = await preflight('https://app.example', 'POST', 'Content-Type, Authorization');
  assert.equal(r.status, 204);
  assert.equal(r.upstreamCalls, 0, 'the preflight never reached the upstream');
  assert.equal(r.headers['access-control-allow-origin'], 'https://app.example');
  assert.equal(r.headers['access-control-allow-credentials'], 'true');
  assert.equal(r.headers['access-control-allow-methods'], 'GET, POST');
  assert.equal(r.headers['access-control-allow-headers'], 'authorization, content-type');
  assert.equal(r.headers['access-control-max-age'], '600');
  assert.match(String(r.headers['vary']), /Origin/);
  assert.equal(r.text, '');
});

test('cors: preflights from a disallowed origin, or asking for a method or header outside the lists, get 403 and no allow headers', async () => {
  for (const [o, m, h, why] of [
    ['https://evil.example', 'POST', 'content-type', 'origin not listed'],
    ['https://app.example', 'DELETE', undefined, 'method not listed'],
    ['https://app.example', 'POST', 'content-type, x-secret', 'header not listed'],
    ['null', 'GET', undefined, 'the opaque origin'],
  ] as const) {
    const r = await preflight(o, m, h);
    assert.equal(r.status, 403, why);
    assert.equal(r.upstreamCalls, 0, why);
    assert.deepEqual(corsHeaders(r.headers), [], `${why}: no CORS headers`);
    assert.equal(JSON.parse(r.text).error.code, 'WEIR_ERR_CORS_PREFLIGHT_REFUSED', why);
  }
});

test('cors: actual requests from allowed origins get the origin echoed, credentials, expose headers and Vary: Origin; disallowed ones get no CORS headers', async () => {
  const ok = await call('/api', 'GET', { origin: 'https://app.example' });
  assert.equal(ok.status, 200);
  assert.equal(ok.upstreamCalls, 1);
  assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example', 'echoed, never * with credentials');
  assert.equal(ok.headers['access-control-allow-credentials'], 'true');
  assert.equal(ok.headers['access-control-expose-headers'], 'x-request-id');
  assert.equal(ok.headers['vary'], 'Origin');
  assert.equal(ok.headers['access-control-max-age'], undefined, 'preflight-only header');

  const no = await call('/api', 'GET', { origin: 'https://evil.example' });
  assert.equal(no.status, 200, 'the request itself goes through; the browser withholds the answer');
  assert.deepEqual(corsHeaders(no.headers), [], "the upstream's own access-control-allow-origin is dropped too");
  assert.equal(no.headers['vary'], 'Origin');

  const none = await call('/api', 'GET', {});
  assert.deepEqual(corsHeaders(none.headers), []);
  assert.equal(none.headers['vary'], 'Origin', 'a cache must not serve this answer to another origin');

  const merged = await call('/vary', 'POST', { origin: 'https://app.example' });
  assert.equal(merged.headers['vary'], 'Accept-Encoding, Origin');

  // A later filter's local reply (here a 429) carries the headers too, so the script can read it.
  assert.equal((await call('/limited', 'GET', { origin: 'https://app.example' })).status, 200);
  const limited = await call('/limited', 'GET', { origin: 'https://app.example' });
  assert.equal(limited.status, 429);
  assert.equal(limited.headers['access-control-allow-origin'], 'https://app.example');

  // OPTIONS without Access-Control-Request-Method is not a preflight: it goes upstream.
  const options = await call('/api', 'OPTIONS', { origin: 'https://app.example' });
  assert.equal(options.upstreamCalls, 1);
  assert.equal(options.headers['access-control-allow-origin'], 'https://app.example');
});

test('cors: wildcard subdomains match https://a.example.org, not https://example.org nor https://a.example.org.evil.com', async () => {
  const cases: Array<[string, boolean]> = [
    ['https://a.example.org', true],
    ['https://a.b.example.org', true],
    ['https://A.Example.org', true],
    ['https://example.org', false],
    ['https://a.example.org.evil.com', false],
    ['https://aexample.org', false],
    ['http://a.example.org', false],
    ['https://a.example.org:8443', false],
    ['https://.example.org', false],
    ['https://app.example.evil', false],
  ];
  for (const [o, allowed] of cases) {
    const pre = await preflight(o, 'GET');
    assert.equal(pre.status, allowed ? 204 : 403, o);
    const actual = await call('/api', 'GET', { origin: o });
    assert.equal(actual.headers['access-control-allow-origin'], allowed ? o : undefined, o);
  }
});

test('cors: allow-origins "*" without credentials answers *; allow-headers "*" answers what was asked, except authorization', async () => {
  const r = await call('/open', 'GET', { origin: 'https://anyone.example' });
  assert.equal(r.headers['access-control-allow-origin'], '*');
  assert.equal(r.headers['access-control-allow-credentials'], undefined);
  assert.equal(r.headers['vary'], undefined, 'the answer does not depend on the origin');
  const pre = await preflight('https://anyone.example', 'POST', 'x-one, x-two', '/open');
  assert.equal(pre.status, 204);
  assert.equal(pre.headers['access-control-allow-origin'], '*');
  assert.equal(pre.headers['access-control-allow-headers'], 'x-one, x-two');
  assert.equal(pre.headers['access-control-max-age'], undefined);
  assert.equal((await preflight('https://anyone.example', 'POST', 'authorization', '/open')).status, 403, 'Fetch: * never covers Authorization');
  assert.equal((await preflight('https://anyone.example', 'PUT', undefined, '/open')).status, 403, 'default methods: GET, HEAD, POST');
});

test('cors: plugins/cors/cases.json passes under weir plugin test', async () => {
  const out: string[] = [];
  const failed = await runPluginTests(firstPartyPluginPath('cors'), CASES, (s) => out.push(s));
  assert.equal(failed, 0, out.join(''));
  assert.ok(out.filter((l) => l.startsWith('ok ')).length >= 8, out.join(''));
});

test('cors: weir validate reports a bad cors block at file:line:column', () => {
  const validate = (text: string) => {
    const f = join(tmpDir(), 'weir.kdl');
    writeFileSync(f, `listeners { listener "m" { address "127.0.0.1:0"; } }
upstreams { upstream "o" { target "127.0.0.1:1"; } }
${text}`);
    const v = spawnSync(process.execPath, [WEIR, 'validate', f], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(v.status, 1, v.stderr);
    return v.stderr;
  };
  const plugin = validate(`routes { route "r" { matches { path-prefix "/"; }; upstream "o"; filters "a" "b"; } }
filters {
    filter "a" {
        type "cors"
        allow-origins "https://app.example/"
    }
    filter "b" {
        type "cors"
        allow-credentials #true
        allow-origins "*"
    }
}
`);
  assert.match(plugin, /weir\.kdl:7:9: error WEIR_ERR_PLUGIN_CONFIG: .*allow-origins: "https:\/\/app\.example\/" has a path/);
  assert.match(plugin, /weir\.kdl:12:9: error WEIR_ERR_PLUGIN_CONFIG: .*allow-origins "\*" with allow-credentials #true/);
  const typed = validate(`routes { route "r" { matches { path-prefix "/"; }; upstream "o"; filters "c"; } }
filters { filter "c" { type "cors"; allow-origins "https://x.example"; max-age-secs "long"; } }
`);
  assert.match(typed, /weir\.kdl:4:\d+: error WEIR_ERR_CONFIG_TYPE: `max-age-secs` expects an integer/);
  // As a plain wasm plugin, the component's own config-schema checks the block.
  const schema = validate(`routes { route "r" { matches { path-prefix "/"; }; upstream "o"; filters "w"; } }
filters { filter "w" { type "wasm"; plugin "cors"; } }
plugins {
    plugin "cors" {
        path "${firstPartyPluginPath('cors')}"
        config {
            allow-origins "https://x.example"
            max-age-secs 100000
        }
    }
}
`);
  assert.match(schema, /weir\.kdl:10:26: error WEIR_ERR_PLUGIN_CONFIG: .*`max-age-secs` must be <= 86400/);
});
