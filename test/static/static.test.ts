import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { request } from 'undici';
import { startWeirWith } from '../helpers/weir.ts';
import { byteranges, rawRequest } from '../helpers/http.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const dir = mkdtempSync(join(tmpdir(), 'weir-static-'));
const root = join(dir, 'site');
mkdirSync(join(root, 'docs'), { recursive: true });
writeFileSync(join(root, 'index.html'), '<h1>home</h1>');
writeFileSync(join(root, 'app.js'), 'console.log(1);'.repeat(100));
writeFileSync(join(root, 'app.js.br'), zlib.brotliCompressSync('console.log(1);'.repeat(100)));
writeFileSync(join(root, 'app.js.gz'), zlib.gzipSync('console.log(1);'.repeat(100)));
writeFileSync(join(root, 'docs', 'index.html'), 'docs index');
writeFileSync(join(root, 'data.json'), '{"a":1}');
writeFileSync(join(root, 'big.bin'), Buffer.alloc(3 * 1024 * 1024, 7));
writeFileSync(join(dir, 'secret.txt'), 'outside the root');
symlinkSync(join(dir, 'secret.txt'), join(root, 'leak.txt'));
symlinkSync(join(root, 'data.json'), join(root, 'inside-link.json'));

async function start(block: string): Promise<string> {
  const { weir, url } = await startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
routes { route "files" { matches { path-prefix "/"; }; static-files { ${block} } } }
`);
  cleanups.push(() => weir.close());
  return url;
}

async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const r = await request(url, { method: method as 'GET', headers });
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) };
}

test('files with MIME types, index, ETag and Last-Modified; conditional GET 304; HEAD; other methods 405; missing 404', async () => {
  const url = await start(`root "${root}"; cache-control "public, max-age=300"`);
  const home = await get(`${url}/`);
  assert.equal(home.status, 200);
  assert.equal(home.body.toString(), '<h1>home</h1>');
  assert.equal(home.headers['content-type'], 'text/html; charset=utf-8');
  assert.equal(home.headers['cache-control'], 'public, max-age=300');
  assert.equal((await get(`${url}/docs/`)).body.toString(), 'docs index');
  assert.equal((await get(`${url}/docs`)).body.toString(), 'docs index');
  const js = await get(`${url}/app.js`);
  assert.equal(js.headers['content-type'], 'text/javascript; charset=utf-8');
  assert.equal(js.headers['content-encoding'], undefined, 'precompressed is off');
  const json = await get(`${url}/data.json`);
  assert.equal(json.headers['content-type'], 'application/json; charset=utf-8');
  const etag = String(json.headers['etag']);
  assert.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
  assert.equal((await get(`${url}/data.json`, { 'if-none-match': etag })).status, 304);
  assert.equal((await get(`${url}/data.json`, { 'if-modified-since': String(json.headers['last-modified']) })).status, 304);
  assert.equal((await get(`${url}/data.json`, { 'if-none-match': '"other"' })).status, 200);
  const head = await get(`${url}/data.json`, {}, 'HEAD');
  assert.equal(head.headers['content-length'], '7');
  assert.equal(head.body.length, 0);
  const post = await get(`${url}/data.json`, {}, 'POST');
  assert.equal(post.status, 405);
  assert.equal(post.headers['allow'], 'GET, HEAD');
  const missing = await get(`${url}/nope.txt`);
  assert.equal(missing.status, 404);
  assert.equal(JSON.parse(missing.body.toString()).error.code, 'WEIR_ERR_FILE_NOT_FOUND');
});

test('Range: one range gives 206, a range past the end 416; large files stream', async () => {
  const url = await start(`root "${root}"`);
  const r = await get(`${url}/data.json`, { range: 'bytes=1-3' });
  assert.equal(r.status, 206);
  assert.equal(r.body.toString(), '"a"');
  assert.equal(r.headers['content-range'], 'bytes 1-3/7');
  assert.equal((await get(`${url}/data.json`, { range: 'bytes=-2' })).body.toString(), '1}');
  assert.equal((await get(`${url}/data.json`, { range: 'bytes=50-' })).status, 416);
  const big = await get(`${url}/big.bin`);
  assert.equal(big.body.length, 3 * 1024 * 1024);
  assert.equal(big.headers['content-length'], String(3 * 1024 * 1024));
  assert.ok(big.body.every((b) => b === 7));
  const tail = await get(`${url}/big.bin`, { range: `bytes=${3 * 1024 * 1024 - 4}-` });
  assert.equal(tail.body.length, 4);
});

test('traversal is impossible: dot segments, encoded dots and a symlink out of the root get nothing outside it', async () => {
  const url = await start(`root "${root}"`);
  const port = new URL(url).port;
  for (const p of ['/../secret.txt', '/%2e%2e/secret.txt', '/docs/../../secret.txt', '/leak.txt', '/..%2fsecret.txt']) {
    const raw = await rawRequest(Number(port), `GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.doesNotMatch(raw, /outside the root/, p);
    assert.match(raw, /^HTTP\/1\.1 (400|404)/, p);
  }
  // A symlink that stays inside the root is followed.
  assert.equal((await get(`${url}/inside-link.json`)).body.toString(), '{"a":1}');
});

test('precompressed serves the .br / .gz sibling the client accepts; fallback serves the SPA entry; index names the directory file', async () => {
  const url = await start(`root "${root}"; precompressed #true; fallback "index.html"; index "index.html"`);
  const br = await get(`${url}/app.js`, { 'accept-encoding': 'gzip, br' });
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(br.headers['vary'], 'Accept-Encoding');
  assert.equal(zlib.brotliDecompressSync(br.body).toString(), 'console.log(1);'.repeat(100));
  const gz = await get(`${url}/app.js`, { 'accept-encoding': 'gzip' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  assert.equal(zlib.gunzipSync(gz.body).toString(), 'console.log(1);'.repeat(100));
  const plain = await get(`${url}/app.js`);
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.body.toString(), 'console.log(1);'.repeat(100));
  // No sibling: sent as is.
  assert.equal((await get(`${url}/data.json`, { 'accept-encoding': 'br' })).headers['content-encoding'], undefined);
  const spa = await get(`${url}/app/route/42`);
  assert.equal(spa.status, 200);
  assert.equal(spa.body.toString(), '<h1>home</h1>');
  const other = await start(`root "${root}"; index "data.json"`);
  assert.equal((await get(`${other}/`)).body.toString(), '{"a":1}');
});

test('static-files with an upstream or a builtin-handler is refused (WEIR_ERR_CONFIG_CONSTRAINT)', async () => {
  const { loadConfigText } = await import('../../host/src/config/load.ts');
  for (const other of ['upstream "o"', 'builtin-handler "health"']) {
    const r = await loadConfigText(`route "r" { ${other}; static-files { root "${root}"; } }\nupstream "o" { target "127.0.0.1:1"; }\n`, 'w.kdl');
    assert.ok(!r.ok, other);
    if (!r.ok) assert.deepEqual(r.diagnostics.map((d) => d.code), ['WEIR_ERR_CONFIG_CONSTRAINT'], other);
  }
});

test('Range with several ranges: 206 multipart/byteranges, each part streamed from the file with its Content-Range; overlapping ranges merge', async () => {
  const url = await start(`root "${root}"`);
  const r = await get(`${url}/app.js`, { range: 'bytes=0-6,15-21,18-25' });
  assert.equal(r.status, 206);
  const ct = String(r.headers['content-type']);
  assert.match(ct, /^multipart\/byteranges; boundary=/);
  assert.equal(Number(r.headers['content-length']), r.body.length);
  const whole = 'console.log(1);'.repeat(100);
  assert.deepEqual(byteranges(r.body, ct), [
    { range: `bytes 0-6/${whole.length}`, type: 'text/javascript; charset=utf-8', data: whole.slice(0, 7) },
    { range: `bytes 15-25/${whole.length}`, type: 'text/javascript; charset=utf-8', data: whole.slice(15, 26) },
  ]);
  // Past 16 ranges the whole file is sent instead.
  const many = Array.from({ length: 17 }, (_, i) => `${i * 10}-${i * 10 + 1}`).join(',');
  assert.equal((await get(`${url}/app.js`, { range: `bytes=${many}` })).status, 200);
});
