// examples/deny-path in Rust and AssemblyScript: its cases.json, then through the proxy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import type { Weir } from '../../host/src/weir.ts';
import { EXAMPLES, LANGS, caseFailures, example, startExample } from './build.ts';

for (const lang of LANGS) {
  describe(`deny-path (${lang})`, () => {
    let origin: Origin;
    let weir: Weir;
    let url: string;
    before(async () => {
      origin = await startOrigin();
      ({ weir, url } = await startExample('deny-path', lang, { '127.0.0.1:9000': origin.port }));
    });
    after(async () => {
      await weir?.close();
      await origin?.close();
    });

    const call = async (method: string, path: string) => {
      const res = await request(`${url}${path}`, { method: method as 'GET' });
      return { status: res.statusCode, type: res.headers['content-type'], text: await res.body.text() };
    };

    test('cases.json', async () => {
      const r = await caseFailures(await example('deny-path', lang), join(EXAMPLES, 'deny-path/cases.json'));
      assert.deepEqual(r.failures, []);
      assert.ok(r.count >= 10);
    });

    test('through the proxy: denied prefixes and methods never reach the origin', async () => {
      const before = origin.seen.length;
      for (const [method, path] of [['GET', '/admin'], ['GET', '/internal/metrics'], ['DELETE', '/orders/1'], ['POST', '/reports/q3']] as const) {
        const r = await call(method, path);
        assert.equal(r.status, 403, `${method} ${path}`);
        assert.equal(r.type, 'application/json');
        assert.deepEqual(JSON.parse(r.text), { error: 'forbidden', path });
      }
      assert.equal(origin.seen.length, before);
    });

    test('through the proxy: everything else passes', async () => {
      for (const [method, path] of [['GET', '/administrator'], ['GET', '/reports/q3'], ['POST', '/orders']] as const) {
        const r = await call(method, path);
        assert.equal(r.status, 200, `${method} ${path}`);
        assert.equal(origin.seen.at(-1)!.url, path);
      }
    });
  });
}
