// What v0.1 promises about attempts, end to end: a retry goes back through the plugin's
// select-upstream with attempt 1 and the index of the target that failed, and on-log gets the
// number of attempts and the time spent waiting for the upstream. Inline and worker-isolated,
// with the attempts fixture (test/fixtures/as/attempts), which logs what it is told.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import pino from 'pino';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import { fileURLToPath } from 'node:url';
import { buildOnce } from '../sdk-as/helpers.ts';
import type { Weir } from '../../host/src/weir.ts';

const lines: Array<Record<string, unknown>> = [];
const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) });

let failing: Origin;
let good: Origin;
let weir: Weir;
let url: string;

before(async () => {
  const { result } = await buildOnce(fileURLToPath(new URL('../fixtures/as/attempts/', import.meta.url)));
  failing = await startOrigin((_req, res) => {
    res.writeHead(503, { 'content-length': '4' });
    res.end('down');
  });
  good = await startOrigin();
  const plugin = (name: string, extra: string): string => `    plugin "${name}" { path "${result.outFile}"; ${extra} }`;
  const route = (name: string, prio: number): string =>
    `    route "${name}" { priority ${prio}; matches { header "x-via" "${name}"; }; upstream "pair"; filters "${name}"; policies { retry { max-attempts 2; backoff-ms 1; max-backoff-ms 2; retry-on "503"; } } }`;
  ({ weir, url } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins {
${plugin('inline', '')}
${plugin('worker', 'isolation "worker"; pool-size 1; timeout-ms 2000;')}
}
filters {
    filter "inline" { type "wasm"; plugin "inline"; failure-mode "closed"; }
    filter "worker" { type "wasm"; plugin "worker"; failure-mode "closed"; }
}
routes {
${route('inline', 10)}
${route('worker', 20)}
    route "once" { priority 5; matches { header "x-via" "once"; }; upstream "good"; filters "inline"; }
}
upstreams {
    upstream "pair" { target "127.0.0.1:${failing.port}"; target "127.0.0.1:${good.port}"; }
    upstream "good" { target "127.0.0.1:${good.port}"; }
}
`, { logger }));
});

after(async () => {
  await weir?.close();
  await failing?.close();
  await good?.close();
});

/** The plugin's lines starting with `prefix` since line `from`, once there are `n` (on-log runs after the response). */
async function pluginLines(from: number, prefix: string, n = 1): Promise<string[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const l = lines.slice(from).map((x) => String(x['msg'])).filter((m) => m.startsWith(prefix));
    if (l.length >= n) return l;
    if (Date.now() > deadline) throw new Error('no on-log line from the plugin');
    await new Promise((r) => setImmediate(r));
  }
}

for (const via of ['inline', 'worker']) {
  test(`${via}: a retry goes back through select-upstream with attempt 1 and the failed target; on-log counts 2 attempts and the upstream wait`, async () => {
    const seenFailing = failing.seen.length;
    const seenGood = good.seen.length;
    const from = lines.length;
    const t0 = performance.now();
    const res = await request(`${url}/a`, { headers: { 'x-via': via } });
    await res.body.dump();
    const total = performance.now() - t0;
    assert.equal(res.statusCode, 200);
    assert.equal(failing.seen.length, seenFailing + 1, 'first attempt went to target 0');
    assert.equal(good.seen.length, seenGood + 1, 'the retry went to target 1');
    assert.deepEqual(await pluginLines(from, 'select ', 2), ['select attempt=0 previous=-', 'select attempt=1 previous=0']);
    const [line] = await pluginLines(from, 'log ');
    assert.match(line!, /^log attempts=2 /);
    const updur = Number(/ updur=([0-9.]+) /.exec(line)?.[1]);
    const dur = Number(/ dur=([0-9.]+)$/.exec(line)?.[1]);
    assert.ok(updur > 0 && updur <= dur && dur <= total + 1, `upstream wait ${updur} ms within the exchange's ${dur} ms (client saw ${total.toFixed(1)} ms)`);
  });
}

test('a request answered at the first attempt: attempt 0, attempts=1; a plugin local reply: attempts=0 and no upstream wait', async () => {
  let from = lines.length;
  const ok = await request(`${url}/a`, { headers: { 'x-via': 'once' } });
  await ok.body.dump();
  assert.equal(ok.statusCode, 200);
  assert.deepEqual(await pluginLines(from, 'select '), ['select attempt=0 previous=-']);
  assert.match((await pluginLines(from, 'log '))[0]!, /^log attempts=1 updur=[0-9.]+ /);
  from = lines.length;
  const local = await request(`${url}/local`, { headers: { 'x-via': 'once' } });
  await local.body.dump();
  assert.equal(local.statusCode, 204);
  assert.match((await pluginLines(from, 'log '))[0]!, /^log attempts=0 updur=- /);
});
