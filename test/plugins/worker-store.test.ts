// Worker-isolated plugins share one store: counter-add is exact across the plugin's worker
// threads (requests are spread over them in turn), as the WIT promises.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { request } from 'undici';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import { writeProbe } from '../helpers/probe.ts';
import type { Weir } from '../../host/src/weir.ts';

let origin: Origin;
let weir: Weir;
let url: string;

before(async () => {
  const probe = await writeProbe(tmpDir());
  origin = await startOrigin();
  ({ weir, url } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins { plugin "count" { path "${probe}"; isolation "worker"; pool-size 2; timeout-ms 1000; config { mode "count"; } } }
filters { filter "count" { type "wasm"; plugin "count"; failure-mode "closed"; } }
routes { route "all" { matches { path-prefix "/"; }; upstream "o"; filters "count"; } }
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
`));
});

after(async () => {
  await weir?.close();
  await origin?.close();
});

test('counter-add counts every request once across the worker threads', { skip: availableParallelism() < 2 ? 'one core: the pool has one thread' : false }, async () => {
  const seen: string[] = [];
  for (let i = 0; i < 12; i++) {
    const res = await request(`${url}/n${i}`);
    await res.body.text();
    assert.equal(res.statusCode, 200);
    seen.push(String(origin.seen.at(-1)!.headers['x-count']));
  }
  // Per-thread stores would give 1,1,2,2,3,3,…
  assert.deepEqual(seen, Array.from({ length: 12 }, (_, i) => String(i + 1)));
});
