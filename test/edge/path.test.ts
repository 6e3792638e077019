/**
 * Path normalisation at the edge, over real sockets: a route that denies /admin cannot be
 * bypassed by dot segments, escapes, doubled slashes or backslashes, on HTTP/1.1 and HTTP/2;
 * what the origin receives is the path that was routed; every `path-normalization` value acts.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import { spawnSync } from 'node:child_process';
import { Client } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

let origin: Origin;
let weir: Weir;
let file: string;

function config(port: number): string {
  const l = (name: string, pn: string): string => `listener "${name}" { address "127.0.0.1:0"; protocol "h2c"; ${pn} }`;
  return `schema-version "1.0"
listeners {
    ${l('main', '')}
    ${l('keep', 'path-normalization { escaped-slashes "keep"; }')}
    ${l('redirect', 'path-normalization { escaped-slashes "decode-and-redirect"; }')}
    ${l('decode', 'path-normalization { escaped-slashes "decode"; }')}
    ${l('nomerge', 'path-normalization { merge-slashes #false; escaped-slashes "reject"; }')}
}
routes {
    route "deny-admin" {
        priority 10
        matches { path-prefix "/admin"; }
        builtin-handler "not-found"
    }
    route "all" {
        matches { path-prefix "/"; }
        upstream "origin"
    }
}
upstreams { upstream "origin" { target "127.0.0.1:${port}" } }
system { graceful-shutdown-timeout-secs 1 }
`;
}

before(async () => {
  origin = await startOrigin();
  ({ weir, file } = await startWeirWith(config(origin.port)));
});
after(async () => {
  await weir.close();
  await origin.close();
});

/** One HTTP/1.1 request whose path is sent byte for byte. */
async function h1(listener: string, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const c = new Client(weir.url(listener));
  try {
    const r = await c.request({ method: 'GET', path, headers: { host: 'weir.test' } });
    return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
  } finally {
    await c.close();
  }
}

/** The same over HTTP/2 (h2c prior knowledge). */
async function h2(listener: string, path: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const s = http2.connect(weir.url(listener));
  try {
    return await new Promise((resolve, reject) => {
      const st = s.request({ ':method': 'GET', ':path': path, ':authority': 'weir.test' });
      let status = 0;
      let headers: Record<string, unknown> = {};
      const chunks: Buffer[] = [];
      st.on('response', (h) => {
        status = Number(h[':status']);
        headers = h;
      });
      st.on('data', (c: Buffer) => chunks.push(c));
      st.on('end', () => resolve({ status, headers, body: Buffer.concat(chunks).toString() }));
      st.on('error', reject);
      st.end();
    });
  } finally {
    s.close();
  }
}

const BYPASSES = [
  '/public/../admin/x',
  '/public/%2e%2e/admin/x',
  '/public/%2E%2e/admin/x',
  '/public/.%2e/admin/x',
  '/%61dmin/x',
  '/%41dmin/x'.replace('%41', '%61'),
  '/adm%69n/x',
  '//admin/x',
  '///admin/x',
  '/./admin/x',
  '/%2e/admin/x',
  '/public/..%5cadmin/x',
  '/public/..%5Cadmin/x',
  '/public\\..\\admin/x',
  '/public/..%2fadmin/x',
  '/public%2f..%2fadmin/x',
  '/public/..;/admin/x',
  '/public/./../admin/x',
  '/a/b/../../admin/x',
  '/admin',
  '/admin/',
];

for (const proto of ['h1', 'h2'] as const) {
  test(`[${proto}] no spelling of /admin reaches the origin`, async () => {
    const send = proto === 'h1' ? h1 : h2;
    const leaked: string[] = [];
    for (const p of BYPASSES) {
      const before = origin.seen.length;
      const r = await send('main', p);
      assert.ok(r.status === 404 || r.status === 400, `${p}: status ${r.status}`);
      if (origin.seen.length !== before) leaked.push(`${p} → ${origin.seen.at(-1)!.url}`);
    }
    assert.deepEqual(leaked, []);
  });

  test(`[${proto}] the origin receives the normalised path, the query untouched`, async () => {
    const send = proto === 'h1' ? h1 : h2;
    const cases: Array<[string, string]> = [
      ['/public/./a/../b?x=%2e%2e&y=/../z', '/public/b?x=%2e%2e&y=/../z'],
      ['/%7euser/%c3%a9/%41', '/~user/%C3%A9/A'],
      ['//x///y/', '/x/y/'],
      ['/x/.', '/x/'],
      ['/plain/path?q=1', '/plain/path?q=1'],
    ];
    for (const [sent, want] of cases) {
      const r = await send('main', sent);
      assert.equal(r.status, 200, sent);
      assert.equal(JSON.parse(r.body).url, want, sent);
    }
  });
}

test('a path climbing above the root, a malformed escape, %00: 400 WEIR_ERR_PATH_REJECTED', async () => {
  for (const p of ['/..', '/a/../../b', '/%2e%2e/etc/passwd', '/a%zz', '/a%0', '/a%00b']) {
    const before = origin.seen.length;
    const r = await h1('main', p);
    assert.equal(r.status, 400, p);
    const body = JSON.parse(r.body) as { error: { code: string; request_id: string } };
    assert.equal(body.error.code, 'WEIR_ERR_PATH_REJECTED', p);
    assert.ok(body.error.request_id, p);
    assert.equal(origin.seen.length, before, `${p} reached the origin`);
  }
});

test('escaped-slashes "reject" (default): %2F, %5C and \\ get 400', async () => {
  for (const p of ['/a%2Fb', '/a%2fb', '/a%5Cb', '/a\\b']) {
    const r = await h1('main', p);
    assert.equal(r.status, 400, p);
    assert.equal(JSON.parse(r.body).error.code, 'WEIR_ERR_PATH_REJECTED');
  }
});

test('escaped-slashes "keep": forwarded as escapes, not separators for routing', async () => {
  let r = await h1('keep', '/a%2fb/%5c/x');
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).url, '/a%2Fb/%5C/x');
  r = await h1('keep', '/a\\b');
  assert.equal(JSON.parse(r.body).url, '/a%5Cb');
  // "..%2f" is one segment, not a climb: routed (and forwarded) as such, never to /admin.
  r = await h1('keep', '/public/..%2fadmin/x');
  assert.equal(JSON.parse(r.body).url, '/public/..%2Fadmin/x');
});

test('escaped-slashes "decode-and-redirect": 307 to the decoded path, query kept', async () => {
  const before = origin.seen.length;
  const r = await h1('redirect', '/a%2Fb/../c?q=%2F');
  assert.equal(r.status, 307);
  assert.equal(r.headers['location'], '/a/c?q=%2F');
  assert.equal(origin.seen.length, before);
  // decoded, it is /admin: the redirect target is what a follow-up request is routed on.
  const r2 = await h1('redirect', '/public/..%2fadmin/x');
  assert.equal(r2.status, 307);
  assert.equal(r2.headers['location'], '/admin/x');
  assert.equal((await h1('redirect', '/admin/x')).status, 404);
  // no escaped slash: served normally
  assert.equal((await h1('redirect', '/p/./q')).status, 200);
});

test('escaped-slashes "decode": decoded, normalised, routed and forwarded', async () => {
  let r = await h1('decode', '/a%2Fb%5Cc');
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).url, '/a/b/c');
  const before = origin.seen.length;
  r = await h1('decode', '/public/..%2fadmin/x');
  assert.equal(r.status, 404);
  assert.equal(origin.seen.length, before);
});

test('merge-slashes #false: repeated slashes are forwarded as sent; dot segments still go', async () => {
  let r = await h1('nomerge', '/a//b');
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.body).url, '/a//b');
  r = await h1('nomerge', '/a//../b');
  assert.equal(JSON.parse(r.body).url, '/a/b');
  // "//admin" stays its own path here (an empty first segment): not /admin, and not denied
  r = await h1('nomerge', '//admin/x');
  assert.equal(JSON.parse(r.body).url, '//admin/x');
  // merged by default
  r = await h1('main', '/a//b');
  assert.equal(JSON.parse(r.body).url, '/a/b');
});

test('absolute-form targets get the same rules as origin-form', async () => {
  const before = origin.seen.length;
  const r = await h1('main', 'http://weir.test/public/%2e%2e/admin/x');
  assert.equal(r.status, 404);
  const r2 = await h1('main', 'http://weir.test/a%2Fb');
  assert.equal(r2.status, 400);
  assert.equal(origin.seen.length, before);
});

test('weir simulate applies the same normalisation as the proxy, per listener', async () => {
  const WEIR = new URL('../../host/bin/weir.ts', import.meta.url).pathname;
  const sim = (listener: string, path: string): string => {
    const r = spawnSync(process.execPath, [WEIR, 'simulate', file, 'GET', path, '--listener', listener], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  for (const [listener, path] of [['main', '/public/%2e%2e/admin/x'], ['main', '/a%2Fb'], ['main', '/p/./q//r'], ['keep', '/public/..%2fadmin/x'], ['redirect', '/a%2fb'], ['nomerge', '//admin/x']] as const) {
    const proxied = await h1(listener, path);
    const out = sim(listener, path);
    if (proxied.status === 400) assert.match(out, /result: 400 WEIR_ERR_PATH_REJECTED/, `${listener} ${path}`);
    else if (proxied.status === 307) assert.match(out, new RegExp(`result: 307 redirect to ${proxied.headers['location']}`), `${listener} ${path}`);
    else if (proxied.status === 404) assert.match(out, /route: deny-admin/, `${listener} ${path}`);
    else {
      assert.match(out, /route: all/, `${listener} ${path}`);
      const forwarded = JSON.parse(proxied.body).url as string;
      if (forwarded !== path) assert.ok(out.includes(`normalised path: ${forwarded} `), `${listener} ${path}: ${out}`);
    }
  }
});
