import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { tmpDir } from '../helpers/weir.ts';

const WEIR = new URL('../../host/bin/weir.ts', import.meta.url).pathname;
const weir = (...args: string[]) => spawnSync(process.execPath, [WEIR, ...args], { encoding: 'utf8' });

const CONFIG = `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; } }
routes {
    route "api" {
        priority 10
        matches { path-prefix "/api/"; method "GET"; }
        upstream "backend"
        filters "strip"
    }
    route "fallback" { matches { path-prefix "/"; }; upstream "backend"; }
}
upstreams { upstream "backend" { target "127.0.0.1:9001" weight=3; target "127.0.0.1:9002" weight=1; } }
filters { filter "strip" { type "url-rewrite"; replace-prefix-match "/"; } }
`;

function file(text: string): string {
  const f = join(tmpDir(), 'weir.kdl');
  writeFileSync(f, text);
  return f;
}

test('weir version prints the package version', () => {
  const r = weir('version');
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
});

test('weir validate accepts a good file and exits 1 with file:line:column and a suggestion on a bad one', () => {
  const good = weir('validate', file(CONFIG));
  assert.equal(good.status, 0, good.stderr);
  assert.match(good.stdout, /ok \(1 listeners, 2 routes/);
  const bad = weir('validate', file(CONFIG.replace('path-prefix "/api/"', 'path-prefx "/api/"')));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /weir\.kdl:6:19: error WEIR_ERR_CONFIG_UNKNOWN_KEY: .*path-prefx.*did you mean `path-prefix`/);
  const syntax = weir('validate', file('routes {\n    route "api" {\n        filters ["block"]\n    }\n}\n'));
  assert.equal(syntax.status, 1);
  assert.match(syntax.stderr, /weir\.kdl:3:17: error WEIR_ERR_CONFIG_SYNTAX/);
});

test('weir routes prints the table in match order', () => {
  const r = weir('routes', file(CONFIG));
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  assert.match(lines[0]!, /PRIORITY\s+ROUTE\s+MATCHES\s+FILTERS\s+TARGET/);
  assert.match(lines[1]!, /^10\s+api\s+method=GET prefix=\/api\/\s+strip\s+backend/);
  assert.match(lines[2]!, /fallback/);
});

test('weir simulate explains the route, filters, upstream and target', () => {
  const r = weir('simulate', file(CONFIG), 'GET', 'http://example.com/api/users', '-H', 'x-a: 1');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /✔ api: priority 10, all of: method ∈ \{GET\}; path starts with \/api\//);
  assert.match(r.stdout, /route: api/);
  assert.match(r.stdout, /- strip \(type url-rewrite/);
  assert.match(r.stdout, /target: 127\.0\.0\.1:9001/);
  const post = weir('simulate', file(CONFIG), 'POST', '/api/users');
  assert.match(post.stdout, /✘ api: priority 10, failed: method ∈ \{GET\}/);
  assert.match(post.stdout, /route: fallback/);
});

test('weir run without -c starts the demo: the printed URL proxies to the demo backend', async () => {
  const child = spawn(process.execPath, [WEIR, 'run', '-p', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    let m: RegExpExecArray | null = null;
    for (let i = 0; i < 100 && !m; i++) {
      await new Promise((r) => setTimeout(r, 50));
      m = /proxy:\s+(http:\/\/[^/\s]+)\//.exec(out);
    }
    assert.ok(m, `demo banner printed:\n${out}`);
    const res = await request(`${m[1]}/hello`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['x-served-by'], 'weir');
    const body = (await res.body.json()) as { backend: string; url: string };
    assert.equal(body.backend, 'weir-demo');
    assert.equal(body.url, '/hello');
  } finally {
    child.kill('SIGTERM');
  }
});

test('weir validate refuses a plugin built for ABI v0.1 with WEIR_ERR_PLUGIN_ABI_VERSION and what to do', () => {
  const v01 = new URL('../fixtures/plugins/v0.1/hello-v01.wasm', import.meta.url).pathname;
  const r = weir('validate', file(`schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins { plugin "old" { path "${v01}"; } }
filters { filter "old" { type "wasm"; plugin "old"; } }
routes { route "all" { matches { path-prefix "/"; }; upstream "backend"; filters "old"; } }
upstreams { upstream "backend" { target "127.0.0.1:9001"; } }
`));
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, /WEIR_ERR_PLUGIN_ABI_VERSION/);
  assert.match(r.stderr, /built for weir:proxy@0\.1\.0/);
  assert.match(r.stderr, /rebuild the plugin with the v0\.2 SDK/);
});
