// locality_aware through the real proxy: this proxy runs in zone "a" (WEIR_ZONE); origins on
// port 0 answer with their name and fail their health check on demand.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';
import { bad, ok } from '../config/helpers.ts';

process.env['WEIR_ZONE'] = 'a';

const NAMES = ['b1', 'a1', 'c1', 'a2'] as const;
const sick = new Set<string>();
const origins = new Map<string, Origin>();
let weir: Weir;

before(async () => {
  await buildFirstPartyPlugins();
  for (const n of NAMES) origins.set(n, await startOrigin((req, res) => res.writeHead(req.url === '/hc' && sick.has(n) ? 503 : 200).end(n)));
  const t = (n: string) => `target "127.0.0.1:${origins.get(n)!.port}" zone="${n[0]}";`;
  // Zones by priority: a (the proxy's own), then b and c in the order they first appear.
  ({ weir } = await startWeirWith(`listeners { listener "m" { address "127.0.0.1:0"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "u"; } }
upstreams { upstream "u" { ${NAMES.map(t).join(' ')} load-balancing "locality-aware";
  health-check { type "http"; path "/hc"; interval-secs 0.05; healthy-threshold 1; unhealthy-threshold 1; } } }`));
});

after(async () => {
  await weir?.close();
  for (const o of origins.values()) await o.close();
});

async function counts(n: number): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const res = await request(`${weir.url()}/${i}`);
    assert.equal(res.statusCode, 200);
    const body = await res.body.text();
    out[body] = (out[body] ?? 0) + 1;
  }
  return out;
}

/** Marks `names` sick (the rest healthy) and waits until the proxy sees it. */
async function setSick(...names: string[]): Promise<void> {
  sick.clear();
  for (const n of names) sick.add(n);
  for (let i = 0; i < 200; i++) {
    const u = (await weir.state()).upstreams.find((x) => x.name === 'u')!;
    const down = u.targets.filter((x) => !x.healthy).map((x) => NAMES[[...origins.values()].findIndex((o) => x.address.endsWith(`:${o.port}`))]);
    if (down.length === names.length && names.every((n) => down.includes(n as typeof NAMES[number]))) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`health never settled on ${names.join(',')}`);
}

test('locality_aware: the local zone first; its targets failing, the next zone by priority; none healthy, fail open (local zone first)', async () => {
  await setSick();
  assert.deepEqual(await counts(40), { a1: 20, a2: 20 }, 'zone a only, round robin within it');
  await setSick('a1');
  assert.deepEqual(await counts(10), { a2: 10 }, 'a zone member left: it keeps the traffic');
  await setSick('a1', 'a2');
  assert.deepEqual(await counts(10), { b1: 10 }, 'zone a down: zone b (listed first)');
  await setSick('a1', 'a2', 'b1');
  assert.deepEqual(await counts(10), { c1: 10 }, 'zones a and b down: zone c');
  await setSick('a1', 'a2', 'b1', 'c1');
  const open = await counts(40);
  assert.deepEqual(Object.keys(open).sort(), ['a1', 'a2'], `fail open keeps to the local zone: ${JSON.stringify(open)}`);
  await setSick();
  assert.deepEqual(await counts(10), { a1: 5, a2: 5 }, 'zone a back: traffic returns');
});

test('config: zone= only with locality_aware', async () => {
  const base = 'listeners { listener "m" { address "127.0.0.1:0"; } }\nroutes { route "r" { matches { path-prefix "/"; }; upstream "u"; } }\n';
  const diags = await bad(`${base}upstreams { upstream "u" { target "127.0.0.1:1" zone="a"; target "127.0.0.1:2"; } }\n`);
  assert.deepEqual(diags.map((d) => d.code), ['WEIR_ERR_CONFIG_CONSTRAINT']);
  const cfg = await ok(`${base}upstreams { upstream "u" { target "127.0.0.1:1" zone="a"; target "127.0.0.1:2" zone="b"; load-balancing "locality_aware"; } }\n`);
  assert.deepEqual(cfg.upstreams.get('u')!.targets.map((t) => t.zone), ['a', 'b']);
});
