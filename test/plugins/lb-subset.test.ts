// subset through the real proxy: targets carry labels=, a request names its subset in a
// header; origins on port 0 answer with their name and fail their health check on demand.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';
import { bad } from '../config/helpers.ts';

const LABELS: Record<string, string> = { v1eu: 'version=v1,region=eu', v2eu: 'version=v2,region=eu', v2us: 'version=v2,region=us' };
const sick = new Set<string>();
const origins = new Map<string, Origin>();
let weir: Weir;

before(async () => {
  await buildFirstPartyPlugins();
  for (const n of Object.keys(LABELS)) origins.set(n, await startOrigin((req, res) => res.writeHead(req.url === '/hc' && sick.has(n) ? 503 : 200).end(n)));
  ({ weir } = await startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "u"; } }
upstreams { upstream "u" { ${Object.entries(LABELS).map(([n, l]) => `target "127.0.0.1:${origins.get(n)!.port}" labels="${l}";`).join(' ')}
  load-balancing "subset"; subset-header "X-Canary";
  health-check { type "http"; path "/hc"; interval-secs 0.05; healthy-threshold 1; unhealthy-threshold 1; } } }`));
});

after(async () => {
  await weir?.close();
  for (const o of origins.values()) await o.close();
});

async function counts(n: number, subset?: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await request(`${weir.url()}/${i}`, { headers: subset === undefined ? {} : { 'x-canary': subset } });
    assert.equal(res.statusCode, 200);
    const body = await res.body.text();
    out[body] = (out[body] ?? 0) + 1;
  }
  return out;
}

async function waitHealthy(down: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const u = (await weir.state()).upstreams.find((x) => x.name === 'u')!;
    if (u.targets.filter((t) => !t.healthy).length === down) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error('health never settled');
}

test('subset: the header picks the targets holding every label; no header or no match: every target', async () => {
  await waitHealthy(0);
  assert.deepEqual(await counts(20, 'version=v2'), { v2eu: 10, v2us: 10 });
  assert.deepEqual(await counts(10, 'version=v2, region=us'), { v2us: 10 });
  assert.deepEqual(await counts(10, 'region=eu,version=v1'), { v1eu: 10 });
  assert.deepEqual(Object.keys(await counts(30)).sort(), ['v1eu', 'v2eu', 'v2us']);
  assert.deepEqual(Object.keys(await counts(30, 'version=v3')).sort(), ['v1eu', 'v2eu', 'v2us']);
  // The subset's only target failing: the request goes to the healthy rest.
  sick.add('v2us');
  await waitHealthy(1);
  const c = await counts(20, 'version=v2,region=us');
  sick.clear();
  assert.deepEqual(Object.keys(c).sort(), ['v1eu', 'v2eu']);
});

test('config: labels= and subset-header only with subset; labels are name=value pairs', async () => {
  const base = 'listeners { listener "m" { address "127.0.0.1:0"; } }\nroutes { route "r" { matches { path-prefix "/"; }; upstream "u"; } }\n';
  const up = (body: string) => `${base}upstreams { upstream "u" { ${body} } }\n`;
  assert.deepEqual((await bad(up('target "127.0.0.1:1" labels="a=1"; target "127.0.0.1:2";'))).map((d) => d.code), ['WEIR_ERR_CONFIG_CONSTRAINT']);
  assert.deepEqual((await bad(up('target "127.0.0.1:1"; target "127.0.0.1:2"; subset-header "x-s";'))).map((d) => d.code), ['WEIR_ERR_CONFIG_CONSTRAINT']);
  assert.deepEqual((await bad(up('target "127.0.0.1:1" labels="a"; target "127.0.0.1:2"; load-balancing "subset";'))).map((d) => d.code), ['WEIR_ERR_CONFIG_VALUE']);
});
