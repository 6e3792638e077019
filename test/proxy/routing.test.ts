import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

// One origin per upstream so the test sees which upstream served the request.
let a: Origin, b: Origin, c: Origin, d: Origin;
let weir: Weir;
let url: string;

before(async () => {
  [a, b, c, d] = await Promise.all([startOrigin(), startOrigin(), startOrigin(), startOrigin()]);
  const started = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; protocol "http"; } }
routes {
    route "health" { priority 1000; matches { path "/_/health"; }; builtin-handler "health"; }
    route "exact" { priority 50; matches { path "/exact"; }; upstream "a"; }
    route "admin-host" { priority 40; matches { host "admin.example.com"; path-prefix "/"; }; upstream "b"; }
    route "wild-host" { priority 39; matches { host "*.example.org"; }; upstream "c"; }
    route "post-api" { priority 30; matches { path-prefix "/api/"; method "POST" "PUT"; }; upstream "b"; }
    route "api" { priority 20; matches { path-prefix "/api/"; }; upstream "a"; }
    route "regex" { priority 15; matches { path-regex "^/users/[0-9]+$"; }; upstream "c"; }
    route "canary-header" { priority 14; matches { path-prefix "/app"; header "x-canary" "1"; }; upstream "d"; }
    route "query" { priority 13; matches { path-prefix "/app"; query "beta" "yes"; }; upstream "c"; }
    route "either" {
        priority 12
        matches { path "/one"; }
        matches { path "/two"; }
        upstream "d"
    }
    route "low" { priority 1; matches { path-prefix "/app"; }; upstream "b"; }
}
upstreams {
    upstream "a" { target "127.0.0.1:${a.port}"; }
    upstream "b" { target "127.0.0.1:${b.port}"; }
    upstream "c" { target "127.0.0.1:${c.port}"; }
    upstream "d" { target "127.0.0.1:${d.port}"; }
}`);
  weir = started.weir;
  url = started.url;
});

after(async () => {
  await weir.close();
  await Promise.all([a, b, c, d].map((o) => o.close()));
});

async function whoServes(method: string, path: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await request(url + path, { method: method as 'GET', headers });
  await res.body.dump();
  if (res.statusCode === 404) return '404';
  const port = new Map([[a.port, 'a'], [b.port, 'b'], [c.port, 'c'], [d.port, 'd']]);
  const last = [a, b, c, d].find((o) => o.seen.at(-1)?.headers['x-probe'] === headers['x-probe']);
  return last ? port.get(last.port)! : `status ${res.statusCode}`;
}

const cases: Array<[string, string, Record<string, string>, string]> = [
  ['GET', '/exact', {}, 'a'],
  ['GET', '/exact/more', {}, '404'],
  ['GET', '/api/x', {}, 'a'],
  ['POST', '/api/x', {}, 'b'],
  ['PUT', '/api/x', {}, 'b'],
  ['DELETE', '/api/x', {}, 'a'],
  ['GET', '/anything', { host: 'admin.example.com' }, 'b'],
  ['GET', '/anything', { host: 'admin.example.com:8443' }, 'b'],
  ['GET', '/x', { host: 'shop.example.org' }, 'c'],
  ['GET', '/x', { host: 'example.org' }, '404'],
  ['GET', '/users/42', {}, 'c'],
  ['GET', '/users/abc', {}, '404'],
  ['GET', '/app/page', { 'x-canary': '1' }, 'd'],
  ['GET', '/app/page', { 'x-canary': '0' }, 'b'],
  ['GET', '/app/page?beta=yes', {}, 'c'],
  ['GET', '/app/page?beta=no', {}, 'b'],
  ['GET', '/one', {}, 'd'],
  ['GET', '/two', {}, 'd'],
  ['GET', '/three', {}, '404'],
];

test('routing matrix: priorities, hosts, wildcards, methods, regex, headers, query, several matches blocks', async () => {
  let i = 0;
  for (const [method, path, headers, want] of cases) {
    const probe = `p${i++}`;
    const got = await whoServes(method, path, { ...headers, 'x-probe': probe });
    assert.equal(got, want, `${method} ${path} ${JSON.stringify(headers)}`);
  }
});

test('no route: 404 with the stable code in the body', async () => {
  const res = await request(`${url}/nowhere`);
  assert.equal(res.statusCode, 404);
  const body = (await res.body.json()) as { error: { code: string; request_id: string } };
  assert.equal(body.error.code, 'WEIR_ERR_NO_ROUTE');
  assert.equal(body.error.request_id, res.headers['x-request-id']);
});

test('builtin health handler answers without an upstream', async () => {
  const res = await request(`${url}/_/health`);
  assert.equal(res.statusCode, 200);
  assert.deepEqual(await res.body.json(), { status: 'ok' });
});

test('the route index agrees with a linear scan (random routes and requests)', async () => {
  const { Router } = await import('../../host/src/router/router.ts');
  const fc = (await import('fast-check')).default;
  const loc = { file: 't', line: 0, column: 0 };
  const policies = { timeoutMs: undefined, failureMode: 'closed' as const, retry: { maxAttempts: 1, backoffMs: 0, maxBackoffMs: 0, retryOn: [], budgetPercent: 20, minRetryConcurrency: 3 }, maxBodySize: undefined, allowWebsocket: false, requestDecompression: undefined };
  const hosts = ['a.test', 'b.test', '*.c.test'];
  const prefixes = ['/', '/api', '/api/', '/api/v1/', '/b/', '/b'];
  const block = fc.record({
    hosts: fc.subarray(hosts, { maxLength: 2 }),
    paths: fc.subarray(['/api', '/b/x', '/'], { maxLength: 1 }),
    pathPrefixes: fc.subarray(prefixes, { maxLength: 2 }),
    pathRegexes: fc.subarray(['^/b/[0-9]+$'], { maxLength: 1 }),
    methods: fc.subarray(['GET', 'POST'], { maxLength: 1 }),
  });
  const routeArb = fc.array(fc.array(block, { maxLength: 2 }), { minLength: 1, maxLength: 12 });
  const reqArb = fc.record({
    host: fc.constantFrom('a.test', 'b.test', 'x.c.test', 'c.test', 'z.test'),
    path: fc.constantFrom('/', '/api', '/api/', '/api/v1/x', '/apix', '/b', '/b/1', '/b/x', '/bx', '/other'),
    method: fc.constantFrom('GET', 'POST'),
  });
  fc.assert(fc.property(routeArb, fc.array(reqArb, { minLength: 1, maxLength: 10 }), (blocks, reqs) => {
    const routes = blocks.map((ms, i) => ({
      name: `r${i}`, priority: 0, enabled: true, upstream: 'u', filters: [], builtinHandler: undefined, policies, loc,
      matches: ms.map((m) => ({ ...m, headers: [], query: [] })),
    }));
    const router = new Router(routes);
    for (const r of reqs) {
      const input = { ...r, query: '', headers: {} };
      const linear = router.explain(input).find((t) => t.matched)?.route;
      assert.equal(router.match(input)?.config.name, linear, `${r.method} ${r.host}${r.path}`);
    }
  }), { numRuns: 300 });
});
