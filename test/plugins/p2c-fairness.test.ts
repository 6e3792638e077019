// p2c under sequential load: every request finds zero requests in flight everywhere, so the
// choice falls to the tie-break. Equal targets must share the load fairly (no starvation).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

const origins: Origin[] = [];
let weir: Weir;

before(async () => {
  await buildFirstPartyPlugins();
  for (let i = 0; i < 3; i++) origins.push(await startOrigin((_req, res) => res.writeHead(200).end(String(i))));
  ({ weir } = await startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "p2c"; } }
upstreams { upstream "p2c" { ${origins.map((o) => `target "127.0.0.1:${o.port}";`).join(' ')} load-balancing "p2c"; } }`));
});

after(async () => {
  await weir?.close();
  for (const o of origins) await o.close();
});

test('p2c: 300 sequential requests over three equal targets are shared fairly (chi-square, 2 df)', async () => {
  const counts = [0, 0, 0];
  for (let i = 0; i < 300; i++) {
    const res = await request(`${weir.url()}/${i}`);
    assert.equal(res.statusCode, 200);
    counts[Number(await res.body.text())]!++;
  }
  // 13.82 is the 99.9th percentile of chi-square with 2 degrees of freedom: a fair split
  // fails this one time in a thousand; a starved target (the old tie-break) every time.
  const chi2 = counts.reduce((s, c) => s + (c - 100) ** 2 / 100, 0);
  assert.ok(chi2 < 13.82, `counts ${counts.join('/')} (chi-square ${chi2.toFixed(1)})`);
  assert.ok(counts.every((c) => c >= 60), `every target got a fair share: ${counts.join('/')}`);
});
