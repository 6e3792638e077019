/**
 * The rate-limit filter's own backend keys, as users write them (the seed's memcached block
 * verbatim but for the port, and its redis twin): two Weir instances share one limit.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { available, startMemcached, startRedis, type ServerProc } from '../helpers/servers.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

const weirs: Weir[] = [];
let origin: Origin;
before(async () => {
  await buildFirstPartyPlugins();
  origin = await startOrigin();
});
after(async () => {
  for (const w of weirs) await w.close();
  await origin?.close();
});

/** Floods two instances for about a second; returns admitted, refused and the span. */
async function flood(urls: string[]): Promise<{ ok: number; refused: number; span: number; other: number[] }> {
  let ok = 0;
  let refused = 0;
  const other: number[] = [];
  const start = Date.now();
  await Promise.all([...urls, ...urls, ...urls].map(async (url) => {
    while (Date.now() - start < 1000) {
      const res = await request(`${url}/api`);
      await res.body.dump();
      if (res.statusCode === 200) ok++;
      else if (res.statusCode === 429) refused++;
      else other.push(res.statusCode);
    }
  }));
  return { ok, refused, span: Date.now() - start, other };
}

// KDL v1 throughout (bare \`true\`, as the seed writes it).
const config = (filter: string): string => `
listeners {
    listener "main" {
        address "127.0.0.1:0"
    }
}
filters {
${filter}
}
routes {
    route "api" {
        matches {
            path-prefix "/"
        }
        upstream "o"
        filters "api-rate-limit"
    }
}
upstreams {
    upstream "o" {
        target "127.0.0.1:${origin.port}"
    }
}
`;

describe('memcached backend (sentinel-roadmap-04 block)', { skip: available('memcached') ? false : 'memcached is not installed' }, () => {
  let mc: ServerProc;
  before(async () => {
    mc = await startMemcached();
  });
  after(async () => mc?.stop());

  test('two instances share fixed-window counters in memcached', async () => {
    const block = `    filter "api-rate-limit" {
        type "rate-limit"
        max-rps 100
        burst 20
        backend "memcached"
        memcached-url "memcache://127.0.0.1:${mc.port}"
        memcached-prefix "sentinel:ratelimit:"
        memcached-pool-size 10
        memcached-timeout-ms 50
        memcached-fallback true
        memcached-ttl 2
    }`;
    const a = await startWeirWith(config(block));
    const b = await startWeirWith(config(block));
    weirs.push(a.weir, b.weir);
    const r = await flood([a.url, b.url]);
    assert.deepEqual(r.other, []);
    // Fixed 1 s windows of max(burst, max-rps) = 100: at most two windows' worth in a flood
    // that may straddle one boundary — far below what two independent limiters would let through.
    const windows = Math.ceil(r.span / 1000) + 1;
    assert.ok(r.ok <= 100 * windows, `admitted ${r.ok} over ${r.span} ms`);
    assert.ok(r.ok >= 100, `admitted ${r.ok}: the limit was reached, not undercut`);
    assert.ok(r.refused > 0);
  });
});

describe('redis backend', { skip: available('redis-server') ? false : 'redis-server is not installed' }, () => {
  let redis: ServerProc;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => redis?.stop());

  test('two instances share one token bucket in redis (100/s, burst 10)', async () => {
    const block = `    filter "api-rate-limit" {
        type "rate-limit"
        max-rps 100
        burst 10
        key "route"
        backend "redis"
        redis-url "redis://127.0.0.1:${redis.port}"
        redis-prefix "weir:rl:"
        redis-timeout-ms 500
        redis-fallback true
    }`;
    const a = await startWeirWith(config(block));
    const b = await startWeirWith(config(block));
    weirs.push(a.weir, b.weir);
    const r = await flood([a.url, b.url]);
    assert.deepEqual(r.other, []);
    assert.ok(r.ok <= Math.floor(10 + r.span / 10), `admitted ${r.ok} over ${r.span} ms (bound ${Math.floor(10 + r.span / 10)})`);
    assert.ok(r.refused > 0);
  });
});
