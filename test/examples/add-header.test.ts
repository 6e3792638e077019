// examples/add-header in Rust and AssemblyScript: its cases.json, then through the proxy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import type { Weir } from '../../host/src/weir.ts';
import { EXAMPLES, LANGS, caseFailures, example, startExample } from './build.ts';

for (const lang of LANGS) {
  describe(`add-header (${lang})`, () => {
    let origin: Origin;
    let weir: Weir;
    let url: string;
    before(async () => {
      origin = await startOrigin((req, res) => res.writeHead(200, { 'cache-control': 'max-age=60', 'content-type': 'text/plain' }).end('hello'));
      ({ weir, url } = await startExample('add-header', lang, { '127.0.0.1:9000': origin.port }));
    });
    after(async () => {
      await weir?.close();
      await origin?.close();
    });

    test('cases.json', async () => {
      const r = await caseFailures(await example('add-header', lang), join(EXAMPLES, 'add-header/cases.json'));
      assert.deepEqual(r.failures, []);
      assert.ok(r.count >= 5);
    });

    test('through the proxy: the configured headers are added, the upstream ones kept', async () => {
      const res = await request(`${url}/page`);
      assert.equal(res.statusCode, 200);
      assert.equal(await res.body.text(), 'hello');
      assert.equal(res.headers['x-served-by'], 'weir');
      assert.match(String(res.headers['cache-control']), /max-age=60.*no-store/);
      assert.equal(origin.seen.at(-1)!.headers['x-served-by'], undefined, 'response only');
    });
  });
}
