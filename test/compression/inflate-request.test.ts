import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { request } from 'undici';
import { startOrigin } from '../helpers/origin.ts';
import { basicConfig, startWeirWith } from '../helpers/weir.ts';
import { errorCode } from '../helpers/http.ts';
import { inflateRequestBody } from '../../host/src/compression/inflate-request.ts';
import { WeirError } from '../../host/src/errors.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const text = 'field=value&other=thing;'.repeat(200);

test('inflate-request decodes gzip, zlib and raw deflate, br, zstd and stacked codings; refuses past the byte and ratio caps without inflating whole', async () => {
  const limits = { maxBytes: 1 << 20, maxRatio: 1000 };
  for (const [enc, body] of [
    ['gzip', zlib.gzipSync(text)],
    ['deflate', zlib.deflateSync(text)],
    ['deflate', zlib.deflateRawSync(text)],
    ['br', zlib.brotliCompressSync(text)],
    ['zstd', zlib.zstdCompressSync(text)],
    ['identity', Buffer.from(text)],
  ] as const) assert.equal((await inflateRequestBody(body, enc, limits)).toString(), text, enc);
  // Applied gzip then br: decoded br first.
  assert.equal((await inflateRequestBody(zlib.brotliCompressSync(zlib.gzipSync(text)), 'gzip, br', limits)).toString(), text);
  const bomb = zlib.gzipSync(Buffer.alloc(50 * 1024 * 1024));
  assert.ok(bomb.length < 60_000);
  await assert.rejects(inflateRequestBody(bomb, 'gzip', { maxBytes: 1 << 20, maxRatio: 1e6 }), (e: WeirError) => e.code === 'WEIR_ERR_DECOMPRESSION_LIMIT');
  // Under max-bytes but past the ratio: 4800 bytes from ~60.
  await assert.rejects(inflateRequestBody(zlib.gzipSync(Buffer.alloc(4800)), 'gzip', { maxBytes: 1 << 20, maxRatio: 10 }), (e: WeirError) => e.code === 'WEIR_ERR_DECOMPRESSION_LIMIT');
  await assert.rejects(inflateRequestBody(Buffer.from('not gzip'), 'gzip', limits), (e: WeirError) => e.code === 'WEIR_ERR_BODY_ENCODING');
  await assert.rejects(inflateRequestBody(Buffer.from('x'), 'compress', limits), (e: WeirError) => e.code === 'WEIR_ERR_BODY_ENCODING');
});

test('policies { request-decompression }: the upstream gets the decoded body without Content-Encoding; a zip bomb is 413 and never reaches it; a route without the block forwards the body as sent', async () => {
  const origin = await startOrigin();
  const { weir, url } = await startWeirWith(basicConfig(origin.port, {
    policies: 'request-decompression { max-bytes "1MiB"; max-ratio 200; }',
    routes: 'route "raw" { priority 10; matches { path-prefix "/raw" }; upstream "origin"; }',
  }));
  cleanups.push(() => origin.close(), () => weir.close());
  const post = async (path: string, body: Buffer, encoding: string): Promise<{ status: number; text: string }> => {
    const r = await request(`${url}${path}`, { method: 'POST', headers: { 'content-encoding': encoding, 'content-type': 'application/x-www-form-urlencoded' }, body });
    return { status: r.statusCode, text: await r.body.text() };
  };
  const ok = await post('/form', zlib.gzipSync(text), 'gzip');
  assert.equal(ok.status, 200);
  const seen = origin.seen.at(-1)!;
  assert.equal(seen.body.toString(), text);
  assert.equal(seen.headers['content-encoding'], undefined);
  assert.equal(seen.headers['content-length'], String(text.length));
  const before = origin.seen.length;
  const bomb = await post('/form', zlib.gzipSync(Buffer.alloc(50 * 1024 * 1024)), 'gzip');
  assert.equal(bomb.status, 413);
  assert.equal(errorCode(bomb.text), 'WEIR_ERR_DECOMPRESSION_LIMIT');
  const bad = await post('/form', Buffer.from('plain bytes'), 'br');
  assert.equal(bad.status, 415);
  assert.equal(errorCode(bad.text), 'WEIR_ERR_BODY_ENCODING');
  assert.equal(origin.seen.length, before);
  const raw = zlib.gzipSync(text);
  assert.equal((await post('/raw', raw, 'gzip')).status, 200);
  assert.equal(origin.seen.at(-1)!.headers['content-encoding'], 'gzip');
  assert.deepEqual(origin.seen.at(-1)!.body, raw);
});
