import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startOrigin, type OriginHandler } from '../helpers/origin.ts';
import { basicConfig, startWeirWith } from '../helpers/weir.ts';
import { byteranges } from '../helpers/http.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(handler: OriginHandler, cache = '', top = '', routes = ''): Promise<{ url: string; origin: Awaited<ReturnType<typeof startOrigin>> }> {
  const origin = await startOrigin(handler);
  const { weir, url } = await startWeirWith(basicConfig(origin.port, { policies: `cache { ${cache} }`, top, routes }));
  cleanups.push(() => origin.close(), () => weir.close());
  return { url, origin };
}

async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const r = await request(url, { method: method as 'GET', headers });
  return { status: r.statusCode, headers: r.headers, body: await r.body.text() };
}

let n = 0;
const counting: OriginHandler = (req, res) => {
  n++;
  res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'max-age=60', etag: '"v1"', 'last-modified': 'Wed, 01 Jan 2025 00:00:00 GMT' });
  res.end(`body ${req.url}`);
};

test('a fresh response is stored on a miss and served from memory after: X-Cache, Age, one origin request', async () => {
  const { url, origin } = await setup(counting);
  const a = await get(`${url}/a?x=1`);
  assert.equal(a.headers['x-cache'], 'MISS');
  assert.equal(a.body, 'body /a?x=1');
  const b = await get(`${url}/a?x=1`);
  assert.equal(b.headers['x-cache'], 'HIT');
  assert.equal(b.body, 'body /a?x=1');
  assert.ok(Number(b.headers['age']) >= 0);
  assert.equal(b.headers['etag'], '"v1"');
  assert.equal(origin.seen.filter((s) => s.url === '/a?x=1').length, 1);
  // Another query, scheme-host-path-query key: a different entry.
  assert.equal((await get(`${url}/a?x=2`)).headers['x-cache'], 'MISS');
  // Dot segments are normalised before the key is made: same entry.
  assert.equal((await get(`${url}/b/../a?x=1`)).headers['x-cache'], 'HIT');
});

test('HEAD is answered from a cached GET; conditional requests get 304 from the entry; Range gets 206 from it', async () => {
  const { url, origin } = await setup(counting);
  await get(`${url}/r`);
  const head = await request(`${url}/r`, { method: 'HEAD' });
  await head.body.text();
  assert.equal(head.headers['x-cache'], 'HIT');
  assert.equal(head.headers['content-length'], String('body /r'.length));
  const inm = await get(`${url}/r`, { 'if-none-match': 'W/"v1"' });
  assert.equal(inm.status, 304);
  assert.equal(inm.body, '');
  assert.equal(inm.headers['etag'], '"v1"');
  const ims = await get(`${url}/r`, { 'if-modified-since': 'Thu, 02 Jan 2025 00:00:00 GMT' });
  assert.equal(ims.status, 304);
  const older = await get(`${url}/r`, { 'if-modified-since': 'Tue, 31 Dec 2024 00:00:00 GMT' });
  assert.equal(older.status, 200);
  const range = await get(`${url}/r`, { range: 'bytes=2-4' });
  assert.equal(range.status, 206);
  assert.equal(range.body, 'dy ');
  assert.equal(range.headers['content-range'], `bytes 2-4/${'body /r'.length}`);
  const suffix = await get(`${url}/r`, { range: 'bytes=-2' });
  assert.equal(suffix.body, '/r');
  const bad = await get(`${url}/r`, { range: 'bytes=100-' });
  assert.equal(bad.status, 416);
  const ifRangeOld = await get(`${url}/r`, { range: 'bytes=0-1', 'if-range': '"v0"' });
  assert.equal(ifRangeOld.status, 200);
  assert.equal(origin.seen.filter((s) => s.url === '/r').length, 1);
});

test('100 concurrent misses for one key make one origin request (coalescing)', async () => {
  let hits = 0;
  const { url } = await setup((req, res) => {
    hits++;
    setTimeout(() => {
      res.writeHead(200, { 'cache-control': 'max-age=60' });
      res.end('slow');
    }, 150);
  });
  const all = await Promise.all(Array.from({ length: 100 }, () => get(`${url}/burst`)));
  assert.equal(hits, 1);
  assert.ok(all.every((r) => r.status === 200 && r.body === 'slow'));
  assert.equal(all.filter((r) => r.headers['x-cache'] === 'MISS').length, 1);
  assert.equal(all.filter((r) => r.headers['x-cache'] === 'HIT').length, 99);
});

test('lock-timeout: a request waits that long for a slow fill, then goes to the origin itself', async () => {
  let hits = 0;
  const { url } = await setup((req, res) => {
    hits++;
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.write('part ');
    setTimeout(() => res.end('done'), 1500);
  }, '', 'cache { lock-timeout 0.2 }');
  const first = get(`${url}/slow`);
  await new Promise((r) => setTimeout(r, 50));
  const t0 = performance.now();
  const second = await get(`${url}/slow`);
  assert.equal(hits, 2);
  assert.equal(second.headers['x-cache'], 'MISS');
  assert.ok(performance.now() - t0 >= 150);
  await first;
});

test('the body streams to the client while it is stored; the entry is published only once complete', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const { url } = await setup((req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.write('x'.repeat(1000));
    gate.then(() => res.end('end'));
  });
  const r = await request(`${url}/stream`);
  const it = r.body[Symbol.asyncIterator]();
  const firstChunk = await it.next();
  assert.ok((firstChunk.value as Buffer).length > 0, 'first bytes arrive before the origin finishes');
  // Not published yet: a second request is still a miss in progress (it waits on the fill).
  const pending = get(`${url}/stream`);
  release();
  for (let c = await it.next(); !c.done; c = await it.next());
  const second = await pending;
  assert.equal(second.headers['x-cache'], 'HIT');
  assert.equal(second.body, 'x'.repeat(1000) + 'end');
});

test('Vary: each variant is its own entry; vary-headers adds headers to every key', async () => {
  const { url, origin } = await setup((req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', vary: 'Accept-Language' });
    res.end(`lang=${req.headers['accept-language']} tenant=${req.headers['x-tenant']}`);
  }, 'vary-headers "X-Tenant"');
  assert.equal((await get(`${url}/v`, { 'accept-language': 'en' })).headers['x-cache'], 'MISS');
  assert.equal((await get(`${url}/v`, { 'accept-language': 'fr' })).headers['x-cache'], 'MISS');
  const en = await get(`${url}/v`, { 'accept-language': 'en' });
  assert.equal(en.headers['x-cache'], 'HIT');
  assert.equal(en.body, 'lang=en tenant=undefined');
  assert.equal((await get(`${url}/v`, { 'accept-language': 'fr' })).body, 'lang=fr tenant=undefined');
  const t = await get(`${url}/v`, { 'accept-language': 'en', 'x-tenant': 'a' });
  assert.equal(t.headers['x-cache'], 'MISS');
  assert.equal(t.body, 'lang=en tenant=a');
  assert.equal(origin.seen.length, 3);
});

test('a stale entry is revalidated with If-None-Match; a 304 from the origin refreshes it and the client gets the body', async () => {
  let version = 'v1';
  const { url, origin } = await setup((req, res) => {
    if (req.headers['if-none-match'] === `"${version}"`) {
      res.writeHead(304, { etag: `"${version}"`, 'cache-control': 'max-age=0', 'x-refreshed': 'yes' });
      return res.end();
    }
    res.writeHead(200, { etag: `"${version}"`, 'cache-control': 'max-age=0' });
    res.end(`content ${version}`);
  });
  assert.equal((await get(`${url}/rv`)).headers['x-cache'], 'MISS');
  const again = await get(`${url}/rv`);
  assert.equal(origin.seen.at(-1)!.headers['if-none-match'], '"v1"');
  assert.equal(again.status, 200);
  assert.equal(again.body, 'content v1');
  assert.equal(again.headers['x-cache'], 'HIT');
  assert.equal(again.headers['x-refreshed'], 'yes');
  version = 'v2';
  const changed = await get(`${url}/rv`);
  assert.equal(changed.body, 'content v2');
  assert.equal(changed.headers['x-cache'], 'MISS');
});

test('an unsafe method invalidates the URL (RFC 9111 §4.4) and is marked BYPASS', async () => {
  const { url } = await setup(counting);
  await get(`${url}/item`);
  assert.equal((await get(`${url}/item`)).headers['x-cache'], 'HIT');
  const post = await get(`${url}/item`, {}, 'POST');
  assert.equal(post.headers['x-cache'], 'BYPASS');
  assert.equal((await get(`${url}/item`)).headers['x-cache'], 'MISS');
});

test('no-store, private, Set-Cookie without public, and larger-than max-size-bytes responses are not stored', async () => {
  const { url, origin } = await setup((req, res) => {
    const h: Record<string, string> = { '/ns': 'no-store', '/pr': 'private, max-age=60', '/big': 'max-age=60', '/ck': 'max-age=0' };
    const headers: Record<string, string> = { 'cache-control': h[req.url!] ?? 'max-age=60' };
    if (req.url === '/ck') Object.assign(headers, { 'set-cookie': 'a=1', etag: '"c"' });
    res.writeHead(200, headers);
    res.end(req.url === '/big' ? 'y'.repeat(5000) : 'ok');
  }, 'max-size-bytes 4096');
  for (const p of ['/ns', '/pr', '/big', '/ck']) {
    await get(`${url}${p}`);
    assert.equal((await get(`${url}${p}`)).headers['x-cache'], 'MISS', p);
    assert.equal(origin.seen.filter((s) => s.url === p).length, 2, p);
  }
});

test('cache-private stores private responses; default-ttl-secs gives freshness; cacheable-status-codes and ignore-query-params shape what is stored', async () => {
  const { url, origin } = await setup((req, res) => {
    if (req.url!.startsWith('/missing')) {
      res.writeHead(404, { 'cache-control': 'max-age=60' });
      return res.end('nope');
    }
    res.writeHead(200, req.url!.startsWith('/priv') ? { 'cache-control': 'private, max-age=60' } : {});
    res.end('plain');
  }, 'cache-private #true; default-ttl-secs 30; cacheable-status-codes 200; ignore-query-params "utm_source"');
  await get(`${url}/priv`);
  assert.equal((await get(`${url}/priv`)).headers['x-cache'], 'HIT');
  // No freshness from the origin: default-ttl-secs makes it fresh for 30 s.
  await get(`${url}/plain?utm_source=a&id=1`);
  const hit = await get(`${url}/plain?id=1&utm_source=b`.replace('id=1&utm_source=b', 'utm_source=b&id=1'));
  assert.equal(hit.headers['x-cache'], 'HIT');
  assert.match(String(hit.headers['cache-control']), /max-age=30/);
  assert.equal((await get(`${url}/plain?id=2`)).headers['x-cache'], 'MISS');
  await get(`${url}/missing`);
  assert.equal((await get(`${url}/missing`)).headers['x-cache'], 'MISS');
  assert.equal(origin.seen.filter((s) => s.url === '/missing').length, 2);
});

test('stale-if-error: a stale entry answers (STALE) when the origin fails or sends 5xx; must-revalidate forbids it', async () => {
  let mode: 'ok' | '503' = 'ok';
  const { url, origin } = await setup((req, res) => {
    if (mode === '503') {
      res.writeHead(503);
      return res.end('down');
    }
    res.writeHead(200, { 'cache-control': req.url === '/mr' ? 'max-age=0, must-revalidate' : 'max-age=0' });
    res.end('good');
  }, 'stale-if-error-secs 60');
  await get(`${url}/s`);
  await get(`${url}/mr`);
  mode = '503';
  const s = await get(`${url}/s`);
  assert.equal(s.status, 200);
  assert.equal(s.headers['x-cache'], 'STALE');
  assert.equal(s.body, 'good');
  assert.equal((await get(`${url}/mr`)).status, 503);
  await origin.close();
  const refused = await get(`${url}/s`);
  assert.equal(refused.status, 200);
  assert.equal(refused.headers['x-cache'], 'STALE');
});

test('PURGE: loopback by default; with purge { allow; token } only the listed networks or the token; by URL, prefix* and tag', async () => {
  const { url } = await setup((req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', 'surrogate-key': req.url === '/t/1' ? 'team-a' : 'other' });
    res.end('x');
  }, '', 'cache { purge { allow "10.0.0.0/8"; token "s3cret"; } }');
  for (const p of ['/t/1', '/t/2', '/u']) await get(`${url}${p}`);
  const denied = await get(`${url}/u`, {}, 'PURGE');
  assert.equal(denied.status, 403);
  assert.equal(JSON.parse(denied.body).error.code, 'WEIR_ERR_PURGE_FORBIDDEN');
  assert.equal((await get(`${url}/u`)).headers['x-cache'], 'HIT');
  const one = await get(`${url}/u`, { authorization: 'Bearer s3cret' }, 'PURGE');
  assert.deepEqual(JSON.parse(one.body), { purged: 1 });
  assert.equal((await get(`${url}/u`)).headers['x-cache'], 'MISS');
  const tag = await get(`${url}/`, { 'x-purge-token': 's3cret', 'surrogate-key': 'team-a' }, 'PURGE');
  assert.deepEqual(JSON.parse(tag.body), { purged: 1 });
  assert.equal((await get(`${url}/t/1`)).headers['x-cache'], 'MISS');
  assert.equal((await get(`${url}/t/2`)).headers['x-cache'], 'HIT');
  const prefix = await get(`${url}/t/*`, { 'x-purge-token': 's3cret' }, 'PURGE');
  assert.deepEqual(JSON.parse(prefix.body), { purged: 2 });
  assert.equal((await get(`${url}/t/2`)).headers['x-cache'], 'MISS');
});

test('PURGE from loopback works without a purge block; status-header renames X-Cache', async () => {
  const { url } = await setup(counting, '', 'cache { status-header "X-Weir-Cache" }');
  await get(`${url}/p`);
  assert.equal((await get(`${url}/p`)).headers['x-weir-cache'], 'HIT');
  assert.equal((await get(`${url}/p`, {}, 'PURGE')).status, 200);
  assert.equal((await get(`${url}/p`)).headers['x-weir-cache'], 'MISS');
});

test('max-size evicts least recently used entries; metrics and cache-stats count hits, misses, evictions; enabled #false turns it off', async () => {
  const { url } = await setup((req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end('z'.repeat(3000));
  }, '', 'cache { max-size 10000; eviction-limit 8000; }', `
    route "stats" { priority 5; matches { path "/_stats" }; builtin-handler "cache-stats" }
    route "metrics" { priority 5; matches { path "/_metrics" }; builtin-handler "metrics" }`);
  for (const p of ['/1', '/2', '/3']) await get(`${url}${p}`);
  // 3 × ~3 KB > eviction-limit 8000: the least recently used (/1) went.
  assert.equal((await get(`${url}/3`)).headers['x-cache'], 'HIT');
  assert.equal((await get(`${url}/1`)).headers['x-cache'], 'MISS');
  const stats = JSON.parse((await get(`${url}/_stats`)).body);
  assert.equal(stats.maxBytes, 8000);
  assert.ok(stats.bytes <= 8000 && stats.entries === 2, JSON.stringify(stats));
  assert.equal(stats.hits, 1);
  assert.equal(stats.misses, 4);
  assert.ok(stats.evictions >= 2);
  const metrics = (await get(`${url}/_metrics`)).body;
  assert.match(metrics, /weir_cache_hits_total 1/);
  assert.match(metrics, /weir_cache_evictions_total [2-9]/);

  const off = await setup(counting, '', 'cache { enabled #false }');
  await get(`${off.url}/o`);
  const o = await get(`${off.url}/o`);
  assert.equal(o.headers['x-cache'], undefined);
  assert.equal(off.origin.seen.length, 2);
});

test('only-if-cached without a stored response gets 504 WEIR_ERR_CACHE_ONLY_IF_CACHED', async () => {
  const { url, origin } = await setup(counting);
  const r = await get(`${url}/oic`, { 'cache-control': 'only-if-cached' });
  assert.equal(r.status, 504);
  assert.equal(JSON.parse(r.body).error.code, 'WEIR_ERR_CACHE_ONLY_IF_CACHED');
  assert.equal(origin.seen.length, 0);
});

test('disk backend: one file per entry spread over disk-shards, the index survives a restart, max-size evicts files', async () => {
  const { mkdtempSync, readdirSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'weir-cache-disk-'));
  const origin = await startOrigin((req, res) => {
    res.writeHead(200, { 'cache-control': 'max-age=60', etag: `"${req.url}"` });
    res.end(`${req.url} `.repeat(200));
  });
  cleanups.push(() => origin.close());
  const config = basicConfig(origin.port, { policies: 'cache { }', top: `cache { backend "disk"; disk-path "${dir}"; disk-shards 4; max-size "1MiB"; }` });
  // The key has the host: the same Host header across restarts on new ports.
  const H = { host: 'cache.test' };
  const files = (): string[] => readdirSync(dir).flatMap((s) => readdirSync(join(dir, s)).map((f) => `${s}/${f}`));
  const first = await startWeirWith(config);
  for (let i = 0; i < 12; i++) await get(`${first.url}/d/${i}`, H);
  const hit = await get(`${first.url}/d/3`, H);
  assert.equal(hit.headers['x-cache'], 'HIT');
  assert.equal(hit.body, '/d/3 '.repeat(200));
  assert.deepEqual(readdirSync(dir).sort(), ['00', '01', '02', '03']);
  assert.equal(files().length, 12);
  assert.ok(new Set(files().map((f) => f.slice(0, 2))).size > 1, 'files are spread over shards');
  await first.weir.close();

  const second = await startWeirWith(config);
  cleanups.push(() => second.weir.close());
  const again = await get(`${second.url}/d/7`, { ...H, range: 'bytes=0-4' });
  assert.equal(again.status, 206);
  assert.equal(again.headers['x-cache'], 'HIT');
  assert.equal(again.body, '/d/7 ');
  assert.equal(origin.seen.filter((s) => s.url === '/d/7').length, 1);

  // A small cap: the least recently used files are removed from disk.
  const small = await startWeirWith(basicConfig(origin.port, { policies: 'cache { }', top: `cache { backend "hybrid"; disk-path "${dir}"; disk-shards 4; max-size 3000; }` }));
  cleanups.push(() => small.weir.close());
  // Evicted files are unlinked asynchronously: wait (bounded) for the count to drop.
  for (let i = 0; i < 100 && files().length > 3; i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(files().length <= 3, `files after a restart under a 3000-byte cap: ${files().length}`);
  await get(`${small.url}/h/1`, H);
  assert.equal((await get(`${small.url}/h/1`, H)).headers['x-cache'], 'HIT');
});

test('a route with cache { enabled #false } does not cache, while the top-level cache is on', async () => {
  const { url, origin } = await setup(counting, 'enabled #false');
  await get(`${url}/off`);
  const again = await get(`${url}/off`);
  assert.equal(again.headers['x-cache'], undefined);
  assert.equal(origin.seen.length, 2);
});

test('a response under an unknown Transfer-Encoding (body read to the close) passes through a caching route without stalling the proxy', async () => {
  const { url } = await setup((_req, res) => {
    res.setHeader('transfer-encoding', 'x-custom');
    res.setHeader('connection', 'close');
    res.setHeader('cache-control', 'max-age=60');
    res.end('read to the close');
  });
  const r = await get(`${url}/te`);
  assert.equal(r.status, 200);
  assert.equal(r.body, 'read to the close');
  // The proxy still answers others (the empty chunks undici hands over no longer spin it).
  assert.equal((await get(`${url}/te`)).body, 'read to the close');
});

test('RFC 9111 details: fresh must-revalidate is reused, directive names are case-insensitive, an invalid Age is stale, the stored Date and the origin Content-Length are kept', async () => {
  const { url, origin } = await setup((req, res) => {
    const h: Record<string, string | string[]> = { 'content-type': 'text/plain', date: 'Mon, 01 Dec 2025 00:00:00 GMT' };
    if (req.url === '/mr') h['cache-control'] = 'max-age=60, must-revalidate';
    else if (req.url === '/nc') h['cache-control'] = 'max-age=60, No-CaChE';
    else if (req.url === '/age') Object.assign(h, { 'cache-control': 'max-age=60', age: '0, 0' });
    else h['cache-control'] = 'max-age=60';
    res.writeHead(200, { ...h, 'content-length': '5' });
    res.end('hello');
  });
  const miss = await get(`${url}/mr`);
  assert.equal(miss.headers['content-length'], '5');
  assert.equal((await get(`${url}/mr`)).headers['x-cache'], 'HIT');
  for (const p of ['/nc', '/age']) {
    await get(`${url}${p}`);
    assert.equal((await get(`${url}${p}`)).headers['x-cache'], 'MISS', p);
  }
  await get(`${url}/d`);
  const hit = await get(`${url}/d`);
  assert.equal(hit.headers['x-cache'], 'HIT');
  assert.equal(hit.headers['date'], 'Mon, 01 Dec 2025 00:00:00 GMT');
  assert.equal(origin.seen.filter((s) => s.url === '/mr').length, 1);
});

test('a 304 replaces stored fields except the validator and body fields; any final status with explicit freshness is stored unless must-understand; an unknown method invalidates', async () => {
  let n = 0;
  const { url, origin } = await setup((req, res) => {
    if (req.url === '/u' && req.headers['if-none-match'] === '"a"') {
      res.writeHead(304, { etag: '"b"', 'content-type': 'text/plain;charset=utf-8', 'content-md5': 'new', 'cache-control': 'max-age=60' });
      return res.end();
    }
    if (req.url === '/u') {
      res.writeHead(200, { etag: '"a"', 'content-type': 'text/plain', 'content-md5': 'old', 'cache-control': 'max-age=0' });
      return res.end('u');
    }
    if (req.url === '/299' || req.url === '/599mu') {
      res.writeHead(req.url === '/299' ? 299 : 599, { 'cache-control': req.url === '/299' ? 'max-age=60' : 'max-age=60, must-understand' });
      return res.end(`n${++n}`);
    }
    res.writeHead(200, { 'cache-control': 'max-age=60' });
    res.end(`n${++n}`);
  });
  await get(`${url}/u`);
  const refreshed = await get(`${url}/u`);
  assert.equal(refreshed.headers['x-cache'], 'HIT');
  assert.equal(refreshed.headers['content-type'], 'text/plain;charset=utf-8');
  assert.equal(refreshed.headers['etag'], '"a"');
  assert.equal(refreshed.headers['content-md5'], 'old');
  await get(`${url}/299`);
  const s299 = await get(`${url}/299`);
  assert.equal(s299.status, 299);
  assert.equal(s299.headers['x-cache'], 'HIT');
  await get(`${url}/599mu`);
  assert.equal((await get(`${url}/599mu`)).headers['x-cache'], 'MISS');
  await get(`${url}/m`);
  assert.equal((await get(`${url}/m`)).headers['x-cache'], 'HIT');
  assert.equal((await get(`${url}/m`, {}, 'M-SEARCH')).headers['x-cache'], 'BYPASS');
  assert.equal((await get(`${url}/m`)).headers['x-cache'], 'MISS');
  assert.equal(origin.seen.filter((s) => s.url === '/m').length, 3);
});

test('stale-while-revalidate: a stale entry answers at once (STALE) while one background revalidation refreshes it', async () => {
  let version = 1;
  let hold: (() => void) | undefined;
  const { url, origin } = await setup(async (req, res) => {
    if (req.headers['if-none-match'] === `"v${version}"`) {
      // The revalidation waits until the test has seen the stale answers.
      await new Promise<void>((r) => (hold = r));
      res.writeHead(304, { etag: `"v${version}"`, 'cache-control': 'max-age=60, stale-while-revalidate=60', 'x-revalidated': 'yes' });
      return res.end();
    }
    res.writeHead(200, { etag: `"v${version}"`, 'cache-control': 'max-age=0, stale-while-revalidate=60' });
    res.end(`v${version}`);
  });
  assert.equal((await get(`${url}/swr`)).headers['x-cache'], 'MISS');
  // Stale within the window: both answered from the entry without waiting for the origin.
  const a = await get(`${url}/swr`);
  const b = await get(`${url}/swr`);
  assert.equal(a.headers['x-cache'], 'STALE');
  assert.equal(b.headers['x-cache'], 'STALE');
  assert.equal(a.body, 'v1');
  // One background request, conditional on the stored ETag, though two stale answers went out.
  while (!hold) await new Promise((r) => setTimeout(r, 10));
  assert.equal(origin.seen.filter((s) => s.url === '/swr').length, 2);
  assert.equal(origin.seen.at(-1)!.headers['if-none-match'], '"v1"');
  hold();
  let fresh = await get(`${url}/swr`);
  while (fresh.headers['x-cache'] !== 'HIT') {
    await new Promise((r) => setTimeout(r, 20));
    fresh = await get(`${url}/swr`);
  }
  assert.equal(fresh.headers['x-revalidated'], 'yes');
  assert.equal(fresh.body, 'v1');
  assert.equal(origin.seen.filter((s) => s.url === '/swr').length, 2);
});

test('several ranges are answered from a cached entry as 206 multipart/byteranges', async () => {
  const { url, origin } = await setup(counting);
  await get(`${url}/multi`);
  const r = await request(`${url}/multi`, { headers: { range: 'bytes=0-1,5-' } });
  const body = Buffer.from(await r.body.arrayBuffer());
  assert.equal(r.statusCode, 206);
  assert.equal(r.headers['x-cache'], 'HIT');
  const whole = 'body /multi';
  assert.deepEqual(byteranges(body, String(r.headers['content-type'])), [
    { range: `bytes 0-1/${whole.length}`, type: 'text/plain', data: 'bo' },
    { range: `bytes 5-${whole.length - 1}/${whole.length}`, type: 'text/plain', data: whole.slice(5) },
  ]);
  assert.equal(origin.seen.filter((s) => s.url === '/multi').length, 1);
});

test("Sentinel's route cache keys: exclude-extensions, exclude-paths, cacheable-methods and stale-while-revalidate-secs", async () => {
  const origin = await startOrigin((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', etag: '"s"' });
    res.end(`at ${req.url}`);
  });
  const { weir, url } = await startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "o"
  policies { cache { default-ttl-secs 0; stale-while-revalidate-secs 60; cacheable-methods "GET"; exclude-extensions "PHP"; exclude-paths "/admin/**" "/login"; } } } }
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
`);
  cleanups.push(() => origin.close(), () => weir.close());
  // default-ttl-secs 0 leaves it stale at once; the route's window lets it answer STALE meanwhile.
  assert.equal((await get(`${url}/page`)).headers['x-cache'], 'MISS');
  const stale = await get(`${url}/page`);
  assert.equal(stale.headers['x-cache'], 'STALE');
  assert.match(String(stale.headers['cache-control']), /stale-while-revalidate=60/);
  for (const p of ['/index.php', '/admin/users/1', '/login']) {
    assert.equal((await get(`${url}${p}`)).headers['x-cache'], 'BYPASS', p);
    assert.equal((await get(`${url}${p}`)).headers['x-cache'], 'BYPASS', p);
  }
  assert.equal((await get(`${url}/admin.html`)).headers['x-cache'], 'MISS');
  const head = await request(`${url}/page`, { method: 'HEAD' });
  await head.body.text();
  assert.equal(head.headers['x-cache'], 'BYPASS');
  assert.equal(origin.seen.filter((s) => s.url === '/login').length, 2);
});
