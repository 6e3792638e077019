// rate-limit on-limit "delay": each held request reserves its own slot, so a crowd arriving
// at once reaches the origin at the limit's pace, not all together when the next token is due.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

let origin: Origin;
let weir: Weir;
const arrivals: number[] = [];

before(async () => {
  await buildFirstPartyPlugins();
  origin = await startOrigin((_req, res) => {
    arrivals.push(performance.now());
    res.end('ok');
  });
  ({ weir } = await startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
filters { filter "smooth" { type "rate-limit"; max-rps 10; burst 1; on-limit "delay"; delay-max-ms 6000; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "o"; filters "smooth"; } }
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }`));
});

after(async () => {
  await weir?.close();
  await origin?.close();
});

test('50 concurrent requests at max-rps 10, burst 1, delay: all admitted, at ~10/s', async () => {
  const statuses = await Promise.all(
    Array.from({ length: 50 }, async (_, i) => {
      const res = await request(`${weir.url()}/${i}`);
      await res.body.dump();
      return res.statusCode;
    }),
  );
  assert.deepEqual(new Set(statuses), new Set([200]), 'every request is held, none refused');
  assert.equal(arrivals.length, 50);
  const t = [...arrivals].sort((a, b) => a - b);
  // 50 slots 100 ms apart span 4.9 s; released together they would span a fraction of it.
  const span = t.at(-1)! - t[0]!;
  assert.ok(span >= 4400 && span <= 6500, `admissions spanned ${Math.round(span)} ms`);
  // No second holds much more than the rate plus the burst (a little slack for timers that
  // fire late together on a loaded machine; released together, 50 would share one second).
  let worst = 0;
  for (let i = 0, j = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= 1000) j++;
    worst = Math.max(worst, i - j + 1);
  }
  assert.ok(worst <= 15, `at most 15 admissions in any second, saw ${worst}`);
});
