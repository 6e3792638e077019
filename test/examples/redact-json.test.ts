// examples/redact-json in Rust and AssemblyScript: its cases.json, then through the proxy.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import type { Weir } from '../../host/src/weir.ts';
import { PluginTester } from '../../plugin-abi/src/harness/cases.ts';
import { EXAMPLES, LANGS, caseFailures, example, startExample } from './build.ts';

for (const lang of LANGS) {
  describe(`redact-json (${lang})`, () => {
    let origin: Origin;
    let weir: Weir;
    let url: string;
    before(async () => {
      origin = await startOrigin();
      ({ weir, url } = await startExample('redact-json', lang, { '127.0.0.1:9000': origin.port }));
    });
    after(async () => {
      await weir?.close();
      await origin?.close();
    });

    const post = async (body: string, type = 'application/json') => {
      const res = await request(`${url}/signup`, { method: 'POST', headers: { 'content-type': type }, body });
      return { status: res.statusCode, text: await res.body.text() };
    };

    test('cases.json', async () => {
      const r = await caseFailures(await example('redact-json', lang), join(EXAMPLES, 'redact-json/cases.json'));
      assert.deepEqual(r.failures, []);
      assert.ok(r.count >= 10);
    });

    test('nesting: 100 levels are redacted, more than 128 pass unchanged (bounded recursion)', async () => {
      const nest = (n: number): string => '{"a":'.repeat(n) + '{"password":"x"}' + '}'.repeat(n);
      const tester = new PluginTester(await example('redact-json', lang));
      try {
        const [deep, tooDeep] = await tester.run({
          config: 'fields "password"',
          cases: [
            { name: 'deep', request: { method: 'POST', body: nest(100) }, expect: { upstreamRequest: { body: nest(100).replace('"x"', '"[redacted]"') } } },
            { name: 'too deep', request: { method: 'POST', body: nest(200) }, expect: { upstreamRequest: { body: nest(200) } } },
          ],
        });
        assert.deepEqual([...deep!.problems, ...tooDeep!.problems], []);
      } finally {
        tester.close();
      }
    });

    test('through the proxy: the origin gets the redacted body with a matching length', async () => {
      const r = await post(JSON.stringify({ user: 'ada', password: 'hunter2', card: { card_number: '4111 1111 1111 1111', exp: '12/30' } }));
      assert.equal(r.status, 200);
      const seen = origin.seen.at(-1)!;
      assert.deepEqual(JSON.parse(seen.body.toString()), { user: 'ada', password: '[redacted]', card: { card_number: '[redacted]', exp: '12/30' } });
      if (seen.headers['content-length'] !== undefined) assert.equal(Number(seen.headers['content-length']), seen.body.length);
    });

    test('through the proxy: non-JSON passes unchanged', async () => {
      assert.equal((await post('password=hunter2', 'application/x-www-form-urlencoded')).status, 200);
      assert.equal(origin.seen.at(-1)!.body.toString(), 'password=hunter2');
    });

    test('through the proxy: a body over the limit gets 413 and never reaches the origin', async () => {
      const before = origin.seen.length;
      const r = await post(JSON.stringify({ password: 'x', pad: 'a'.repeat(70_000) }));
      assert.equal(r.status, 413);
      assert.equal(origin.seen.length, before);
    });
  });
}
