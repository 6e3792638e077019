/**
 * Plugins on a remote store: the store host imports suspend through JSPI, through the real
 * proxy; two Weir instances on one Redis share the plugin's counters. A local store keeps
 * the same plugin on the synchronous path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { request } from 'undici';
import { buildEchoComponent } from '../fixtures/plugins/build.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { available, startRedis, type ServerProc } from '../helpers/servers.ts';
import { quiet, startWeirWith, tmpDir } from '../helpers/weir.ts';
import { FallbackStore, RedisStore } from '../../host/src/store/redis.ts';
import { needsJspi } from '../../plugin-abi/src/runtime/plugin.ts';
import type { Weir } from '../../host/src/weir.ts';

const skip = available('redis-server') ? false : 'redis-server is not installed';
const RL = fileURLToPath(new URL('../../plugins/rate-limit/build/rate-limit.wasm', import.meta.url));

test('jspi is chosen per plugin: http-callout, or a store import with a remote store', () => {
  const remote = { remote: true } as never;
  const local = { remote: false } as never;
  assert.equal(needsJspi(['counter-add'], local), false);
  assert.equal(needsJspi(['counter-add'], remote), true);
  assert.equal(needsJspi(['kv-cas'], remote), true);
  assert.equal(needsJspi(['log', 'now-ms'], remote), false);
  assert.equal(needsJspi(['http-callout'], local), true);
});

describe('plugins on redis through the proxy', { skip }, () => {
  let redis: ServerProc;
  let origin: Origin;
  let wasmPath: string;
  const weirs: Weir[] = [];
  const stores: FallbackStore[] = [];
  before(async () => {
    redis = await startRedis();
    origin = await startOrigin();
    wasmPath = join(tmpDir(), 'echo.wasm');
    writeFileSync(wasmPath, await buildEchoComponent());
  });
  after(async () => {
    for (const w of weirs) await w.close();
    for (const s of stores) await s.close();
    await origin?.close();
    await redis?.stop();
  });

  const config = (): string => `
listeners { listener "main" { address "127.0.0.1:0"; } }
plugins { plugin "echo" { path "${wasmPath}"; } }
filters { filter "echo" { type "wasm"; plugin "echo"; failure-mode "closed"; } }
routes { route "r" { matches { path-prefix "/"; }; upstream "o"; filters "echo"; } }
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
`;

  test('rate-limit 100/s burst 10 on two Weir instances sharing redis: ≤ burst + rate × time', { skip: existsSync(RL) ? false : 'rate-limit plugin not built' }, async () => {
    const rl = `
listeners { listener "main" { address "127.0.0.1:0"; } }
filters { filter "rl" { type "rate-limit"; max-rps 100; burst 10; key "route"; } }
routes { route "api" { matches { path-prefix "/"; }; upstream "o"; filters "rl"; } }
upstreams { upstream "o" { target "127.0.0.1:${origin.port}"; } }
`;
    const mk = (): FallbackStore => {
      const s = new FallbackStore(new RedisStore({ url: redis.url, prefix: 'rl:', timeoutMs: 500 }), { logger: quiet, timeoutMs: 500, fallback: false });
      stores.push(s);
      return s;
    };
    const a = await startWeirWith(rl, { store: mk() });
    const b = await startWeirWith(rl, { store: mk() });
    weirs.push(a.weir, b.weir);
    const counts = new Map<number, number>();
    const start = Date.now();
    await Promise.all([a, b, a, b, a, b, a, b].map(async (w) => {
      for (let i = 0; i < 100_000 && Date.now() - start < 1000; i++) {
        const res = await request(`${w.url}/x`);
        await res.body.dump();
        counts.set(res.statusCode, (counts.get(res.statusCode) ?? 0) + 1);
      }
    }));
    const span = Date.now() - start;
    const ok = counts.get(200) ?? 0;
    console.log(`rate-limit on 2 Weir instances + redis: ${ok} admitted, ${counts.get(429) ?? 0} refused over ${span} ms (bound ${Math.floor(10 + span / 10)})`);
    assert.deepEqual([...counts.keys()].filter((c) => c !== 200 && c !== 429), []);
    assert.ok(ok <= Math.floor(10 + span / 10), `admitted ${ok}`);
    assert.ok((counts.get(429) ?? 0) > 0);
  });

  test('two Weir instances share the plugin counters in redis; the store calls suspend (JSPI)', async () => {
    const mk = (): FallbackStore => {
      const s = new FallbackStore(new RedisStore({ url: redis.url, prefix: 'rp:', timeoutMs: 500 }), { logger: quiet, timeoutMs: 500, fallback: false });
      stores.push(s);
      return s;
    };
    const a = await startWeirWith(config(), { store: mk() });
    const b = await startWeirWith(config(), { store: mk() });
    const local = await startWeirWith(config());
    weirs.push(a.weir, b.weir, local.weir);
    const pa = await a.weir.plugins.plugin(a.weir.config.plugins.get('echo')!);
    const pl = await local.weir.plugins.plugin(local.weir.config.plugins.get('echo')!);
    assert.equal(pa.version.jspi, true, 'remote store: JSPI path');
    // The echo imports every host function, http-callout included: on a local store only
    // the callout decides.
    assert.equal(pl.version.jspi, pl.version.hostFunctions.includes('http-callout'));
    const n = 30;
    const statuses: number[] = [];
    for (let i = 0; i < n; i++) {
      const res = await request(`${(i % 2 ? a : b).url}/same`);
      await res.body.dump();
      statuses.push(res.statusCode);
    }
    // The echo's select-upstream answers an out-of-range target on purpose (503); what
    // matters here is that on-request-headers ran its counter-add against redis every time.
    assert.ok(statuses.every((s) => s === 503), `statuses ${[...new Set(statuses)]}`);
    const r = new Redis(redis.url);
    try {
      const keys = await r.keys('rp:c:*');
      let total = 0;
      for (const k of keys) total += Number(await r.get(k));
      assert.equal(total, n, `counter keys ${keys.join(', ')}`);
      const buckets = await r.keys('rp:b:*');
      assert.ok(buckets.length >= 1, 'select-upstream took from a bucket in redis');
    } finally {
      r.disconnect();
    }
  });
});
