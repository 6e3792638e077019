import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import zlib from 'node:zlib';
import { request } from 'undici';
import { startOrigin, type OriginHandler } from '../helpers/origin.ts';
import { basicConfig, startWeirWith } from '../helpers/weir.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const TEXT = 'The quick brown fox jumps over the lazy dog. '.repeat(200);

async function setup(handler: OriginHandler, policies: string): Promise<{ url: string; origin: Awaited<ReturnType<typeof startOrigin>> }> {
  const origin = await startOrigin(handler);
  const { weir, url } = await startWeirWith(basicConfig(origin.port, { policies }));
  cleanups.push(() => origin.close(), () => weir.close());
  return { url, origin };
}

async function fetchRaw(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const r = await request(url, { method: method as 'GET', headers });
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) };
}

function decode(enc: string | undefined, body: Buffer): string {
  if (enc === 'gzip') return zlib.gunzipSync(body).toString();
  if (enc === 'br') return zlib.brotliDecompressSync(body).toString();
  if (enc === 'zstd') return zlib.zstdDecompressSync(body).toString();
  return body.toString();
}

const textOrigin: OriginHandler = (req, res) => {
  const h: Record<string, string> = { 'content-type': 'text/html; charset=utf-8', etag: '"abc"', 'content-length': String(TEXT.length) };
  if (req.url === '/no-transform') h['cache-control'] = 'no-transform';
  if (req.url === '/png') h['content-type'] = 'image/png';
  if (req.url === '/encoded') h['content-encoding'] = 'gzip';
  if (req.url === '/small') {
    h['content-length'] = '5';
    res.writeHead(200, h);
    return res.end('small');
  }
  if (req.url === '/204') {
    res.writeHead(204, { 'content-type': 'text/html' });
    return res.end();
  }
  res.writeHead(200, h);
  res.end(TEXT);
};

test('gzip, br and zstd are negotiated from Accept-Encoding q-values; Vary, weak ETag, no Content-Length', async () => {
  const { url } = await setup(textOrigin, 'compression { }');
  const cases: Array<[string, string | undefined]> = [
    ['gzip', 'gzip'],
    ['br', 'br'],
    ['zstd', 'zstd'],
    ['gzip;q=0.5, br;q=0.9', 'br'],
    ['gzip, br;q=0', 'gzip'],
    ['*', 'br'],
    ['gzip, br, zstd', 'br'],
    ['identity', undefined],
    ['gzip;q=0, *;q=0', undefined],
  ];
  for (const [ae, want] of cases) {
    const r = await fetchRaw(`${url}/page`, { 'accept-encoding': ae });
    assert.equal(r.headers['content-encoding'], want, ae);
    assert.equal(decode(want, r.body), TEXT, ae);
    assert.equal(r.headers['vary'], 'Accept-Encoding', ae);
    if (want) {
      assert.equal(r.headers['etag'], 'W/"abc"', ae);
      assert.equal(r.headers['content-length'], undefined, ae);
      assert.ok(r.body.length < TEXT.length / 5, `${ae}: ${r.body.length}`);
    } else assert.equal(r.headers['etag'], '"abc"', ae);
  }
});

test('encodings order and content-types and min-size are per route', async () => {
  const { url } = await setup(textOrigin, 'compression { encodings "gzip" "zstd"; content-types "image/*"; min-size 100000; }');
  // text/html is not listed, image/png is; TEXT is under min-size 100000.
  const page = await fetchRaw(`${url}/page`, { 'accept-encoding': 'gzip, br, zstd' });
  assert.equal(page.headers['content-encoding'], undefined);
  const png = await fetchRaw(`${url}/png`, { 'accept-encoding': 'gzip, br, zstd' });
  assert.equal(png.headers['content-encoding'], undefined, 'under min-size');
  const images = await setup(textOrigin, 'compression { content-types "image/*"; min-size 10; }');
  assert.equal((await fetchRaw(`${images.url}/png`, { 'accept-encoding': 'gzip' })).headers['content-encoding'], 'gzip', 'image/* listed');
  assert.equal((await fetchRaw(`${images.url}/page`, { 'accept-encoding': 'gzip' })).headers['content-encoding'], undefined, 'text/html not listed');
  const other = await setup(textOrigin, 'compression { encodings "zstd" "gzip"; gzip-level 1; }');
  const z = await fetchRaw(`${other.url}/page`, { 'accept-encoding': 'gzip, br, zstd' });
  assert.equal(z.headers['content-encoding'], 'zstd');
  const br = await fetchRaw(`${other.url}/page`, { 'accept-encoding': 'br' });
  assert.equal(br.headers['content-encoding'], undefined, 'br is not offered');
});

test('never compressed: HEAD, 204, small, already encoded, no-transform, a type not listed', async () => {
  const { url } = await setup(textOrigin, 'compression { }');
  const ae = { 'accept-encoding': 'gzip' };
  for (const p of ['/small', '/encoded', '/no-transform', '/png']) {
    const r = await fetchRaw(`${url}${p}`, ae);
    assert.equal(r.headers['content-encoding'], p === '/encoded' ? 'gzip' : undefined, p);
  }
  const head = await fetchRaw(`${url}/page`, ae, 'HEAD');
  assert.equal(head.headers['content-encoding'], undefined);
  assert.equal(head.headers['content-length'], String(TEXT.length));
  const nc = await fetchRaw(`${url}/204`, ae);
  assert.equal(nc.status, 204);
  assert.equal(nc.headers['content-encoding'], undefined);
});

test('with the cache: the entry is stored identity and compressed per client on the way out', async () => {
  const { url, origin } = await setup((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=60', etag: '"j"' });
    res.end(JSON.stringify({ text: TEXT }));
  }, 'cache { }; compression { }');
  const miss = await fetchRaw(`${url}/j`, { 'accept-encoding': 'gzip' });
  assert.equal(miss.headers['x-cache'], 'MISS');
  assert.equal(miss.headers['content-encoding'], 'gzip');
  assert.equal(JSON.parse(decode('gzip', miss.body)).text, TEXT);
  const br = await fetchRaw(`${url}/j`, { 'accept-encoding': 'br' });
  assert.equal(br.headers['x-cache'], 'HIT');
  assert.equal(br.headers['content-encoding'], 'br');
  assert.equal(br.headers['content-length'], String(br.body.length));
  assert.equal(br.headers['etag'], 'W/"j"');
  assert.equal(br.headers['vary'], 'Accept-Encoding');
  assert.equal(JSON.parse(decode('br', br.body)).text, TEXT);
  const plain = await fetchRaw(`${url}/j`);
  assert.equal(plain.headers['x-cache'], 'HIT');
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.equal(plain.headers['etag'], '"j"');
  assert.equal(JSON.parse(plain.body.toString()).text, TEXT);
  // A conditional request with the weakened tag still gets 304 from the entry.
  const cond = await fetchRaw(`${url}/j`, { 'accept-encoding': 'gzip', 'if-none-match': 'W/"j"' });
  assert.equal(cond.status, 304);
  assert.equal(origin.seen.length, 1);
});

test('streaming with backpressure: a client that does not read holds the origin back', async () => {
  let written = 0;
  let stop = false;
  const total = 32 * 1024 * 1024;
  const { url } = await setup((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    const pump = (): void => {
      while (!stop && written < total) {
        const chunk = Buffer.from(randomBytes(48 * 1024).toString('base64'));
        written += chunk.length;
        if (!res.write(chunk)) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
    res.on('close', () => (stop = true));
  }, 'compression { encodings "gzip"; gzip-level 1; }');
  const u = new URL(url);
  const req = http.get({ host: u.hostname, port: u.port, path: '/big', headers: { 'accept-encoding': 'gzip' } });
  const res = await new Promise<http.IncomingMessage>((r) => req.on('response', r));
  assert.equal(res.headers['content-encoding'], 'gzip');
  res.pause();
  // Give the pipeline time to fill every buffer on the way, then check it stopped.
  // (written unchanged over half a second: the flow has stopped).
  let before = -1;
  for (let i = 0; i < 20 && written !== before; i++) {
    before = written;
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.ok(written < 16 * 1024 * 1024, `origin wrote ${written} bytes to a client that read nothing`);
  assert.equal(written, before, 'the origin is paused');
  // Reading resumes the flow: the whole body arrives and inflates.
  const gunzip = zlib.createGunzip();
  let inflated = 0;
  gunzip.on('data', (c: Buffer) => (inflated += c.length));
  const done = new Promise((r) => gunzip.on('end', r));
  res.pipe(gunzip);
  await done;
  assert.ok(written >= total);
  assert.equal(inflated, written);
});

test('gzip-level, br-level and zstd-level set the effort (a higher level gives a smaller body); enabled #false turns it off', async () => {
  // Moderately compressible text: words drawn from a small vocabulary by a fixed generator.
  const words = Array.from({ length: 300 }, (_, i) => `w${(i * 7919) % 1009}x${i % 13}`);
  let seed = 42;
  const body = Array.from({ length: 6000 }, () => words[(seed = (seed * 1103515245 + 12345) % 2 ** 31) % words.length]).join(' ');
  const handler: OriginHandler = (req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(body);
  };
  const low = await setup(handler, 'compression { gzip-level 1; br-level 0; zstd-level 1; }');
  const high = await setup(handler, 'compression { gzip-level 9; br-level 11; zstd-level 19; }');
  for (const enc of ['gzip', 'br', 'zstd']) {
    const a = await fetchRaw(`${low.url}/l`, { 'accept-encoding': enc });
    const b = await fetchRaw(`${high.url}/l`, { 'accept-encoding': enc });
    assert.equal(decode(enc, a.body), body);
    assert.equal(decode(enc, b.body), body);
    assert.ok(b.body.length < a.body.length, `${enc}: level high ${b.body.length} < low ${a.body.length}`);
  }
  const off = await setup(handler, 'compression { enabled #false; }');
  const r = await fetchRaw(`${off.url}/l`, { 'accept-encoding': 'gzip' });
  assert.equal(r.headers['content-encoding'], undefined);
  assert.equal(r.headers['vary'], undefined);
});
