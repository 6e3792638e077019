// examples/api-key in Rust and AssemblyScript: its cases.json, then through the proxy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import type { Weir } from '../../host/src/weir.ts';
import { EXAMPLES, LANGS, caseFailures, example, startExample } from './build.ts';

for (const lang of LANGS) {
  describe(`api-key (${lang})`, () => {
    let origin: Origin;
    let weir: Weir;
    let url: string;
    before(async () => {
      origin = await startOrigin();
      ({ weir, url } = await startExample('api-key', lang, { '127.0.0.1:9000': origin.port }));
    });
    after(async () => {
      await weir?.close();
      await origin?.close();
    });

    const call = async (path: string, headers: Record<string, string> = {}) => {
      const res = await request(`${url}${path}`, { headers });
      return { status: res.statusCode, text: await res.body.text() };
    };

    test('cases.json', async () => {
      const r = await caseFailures(await example('api-key', lang), join(EXAMPLES, 'api-key/cases.json'));
      assert.deepEqual(r.failures, []);
      assert.ok(r.count >= 7);
    });

    test('through the proxy: 401 without a key, 403 with an unknown one, nothing reaches the origin', async () => {
      const before = origin.seen.length;
      const missing = await call('/api/items');
      assert.equal(missing.status, 401);
      assert.deepEqual(JSON.parse(missing.text), { error: 'missing api key' });
      const unknown = await call('/api/items', { 'x-api-key': 'k-live-gamma' });
      assert.equal(unknown.status, 403);
      assert.deepEqual(JSON.parse(unknown.text), { error: 'unknown api key' });
      assert.equal(origin.seen.length, before);
    });

    test('through the proxy: a known key passes and is stripped; public routes need none', async () => {
      const ok = await call('/api/items', { 'x-api-key': 'k-live-beta', 'x-trace': 't1' });
      assert.equal(ok.status, 200);
      const seen = origin.seen.at(-1)!;
      assert.equal(seen.url, '/api/items');
      assert.equal(seen.headers['x-api-key'], undefined);
      assert.equal(seen.headers['x-trace'], 't1');
      assert.equal((await call('/public')).status, 200);
    });
  });
}
