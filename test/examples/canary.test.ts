// examples/canary in Rust and AssemblyScript: its cases.json, then through the proxy with a
// stable and a canary origin.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import type { Weir } from '../../host/src/weir.ts';
import { EXAMPLES, LANGS, caseFailures, example, startExample } from './build.ts';

for (const lang of LANGS) {
  describe(`canary (${lang})`, () => {
    let stable: Origin;
    let canary: Origin;
    let weir: Weir;
    let url: string;
    before(async () => {
      stable = await startOrigin((req, res) => res.writeHead(200, { 'x-origin': 'stable' }).end());
      canary = await startOrigin((req, res) => res.writeHead(200, { 'x-origin': 'canary' }).end());
      ({ weir, url } = await startExample('canary', lang, { '127.0.0.1:9000': stable.port, '127.0.0.1:9001': canary.port }));
    });
    after(async () => {
      await weir?.close();
      await stable?.close();
      await canary?.close();
    });

    const servedBy = async (headers: Record<string, string> = {}) => {
      const res = await request(`${url}/app`, { headers });
      await res.body.dump();
      assert.equal(res.statusCode, 200);
      return res.headers['x-origin'];
    };

    test('cases.json', async () => {
      const r = await caseFailures(await example('canary', lang), join(EXAMPLES, 'canary/cases.json'));
      assert.deepEqual(r.failures, []);
      assert.ok(r.count >= 5);
    });

    test('through the proxy: x-canary: 1 and the cookie go to the canary upstream', async () => {
      assert.equal(await servedBy({ 'x-canary': '1' }), 'canary');
      assert.equal(await servedBy({ cookie: 'session=s; canary=1' }), 'canary');
      assert.equal(canary.seen.at(-1)!.url, '/app');
    });

    test('through the proxy: everyone else stays on the stable upstream', async () => {
      assert.equal(await servedBy(), 'stable');
      assert.equal(await servedBy({ 'x-canary': '0', cookie: 'canary=0' }), 'stable');
    });
  });
}
