import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MemcachedStore } from '../../host/src/store/memcached.ts';
import { FallbackStore } from '../../host/src/store/redis.ts';
import { available, startMemcached, type ServerProc } from '../helpers/servers.ts';
import { quiet } from '../helpers/weir.ts';

const skip = available('memcached') ? false : 'memcached is not installed';

describe('memcached store', { skip }, () => {
  let mc: ServerProc;
  before(async () => {
    mc = await startMemcached();
  });
  after(async () => {
    await mc?.stop();
  });

  test('fixed-window counters are shared by two clients', async () => {
    const a = new MemcachedStore({ url: mc.url, prefix: 'm1:', timeoutMs: 500 });
    const b = new MemcachedStore({ url: mc.url, prefix: 'm1:', timeoutMs: 500, poolSize: 2 });
    try {
      const got = await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? a : b).counterAdd('c', 1, 3_600_000)));
      assert.deepEqual([...got].sort((x, y) => x - y), Array.from({ length: 60 }, (_, i) => i + 1));
      assert.equal(await a.counterAdd('c', 5, 3_600_000), 65);
      assert.equal(await b.counterAdd('odd key with spaces\u0000', 2, 3_600_000), 2, 'keys memcached cannot hold are hashed');
      // A new window starts from zero (injected clock).
      a.now = () => 7_200_000 * 1000 + 1;
      assert.equal(await a.counterAdd('w', 1, 1000), 1);
      a.now = () => 7_200_000 * 1000 + 1001;
      assert.equal(await a.counterAdd('w', 1, 1000), 1);
    } finally {
      a.close();
      b.close();
    }
  });

  test('concurrent first increments of a key (creation race) lose nothing', async () => {
    const a = new MemcachedStore({ url: mc.url, prefix: 'm5:', timeoutMs: 500, poolSize: 4 });
    const b = new MemcachedStore({ url: mc.url, prefix: 'm5:', timeoutMs: 500, poolSize: 4 });
    try {
      const keys = Array.from({ length: 30 }, (_, i) => `race${i}`);
      await Promise.all(keys.flatMap((k) => Array.from({ length: 10 }, (_, j) => (j % 2 ? a : b).counterAdd(k, 1, 3_600_000))));
      for (const k of keys) assert.equal(await a.counterAdd(k, 0, 3_600_000), 10, k);
    } finally {
      a.close();
      b.close();
    }
  });

  test('token-bucket-take: a 1 s window of max(burst, rate) shared by two clients', async () => {
    const a = new MemcachedStore({ url: mc.url, prefix: 'm2:', timeoutMs: 500 });
    const b = new MemcachedStore({ url: mc.url, prefix: 'm2:', timeoutMs: 500 });
    const t = 1_000_000_000_000;
    a.now = b.now = () => t;
    try {
      const r = await Promise.all(Array.from({ length: 150 }, (_, i) => (i % 2 ? a : b).tokenBucketTake('tb', 100, 10, 1)));
      assert.equal(r.filter((x) => x.allowed).length, 100);
      const denied = r.find((x) => !x.allowed)!;
      assert.equal(denied.retryAfterMs, 1000);
    } finally {
      a.close();
      b.close();
    }
  });

  test('kv: create-if-absent is atomic, versioned update, stale refused', async () => {
    const a = new MemcachedStore({ url: mc.url, prefix: 'm3:', timeoutMs: 500 });
    try {
      const v1 = await a.kvCas('k', new Uint8Array([1]), undefined, 0);
      assert.ok(v1 !== undefined);
      assert.equal(await a.kvCas('k', new Uint8Array([2]), undefined, 0), undefined);
      const v2 = await a.kvCas('k', new Uint8Array([3]), v1, 0);
      assert.ok(v2 !== undefined && v2 > v1!);
      assert.equal(await a.kvCas('k', new Uint8Array([4]), v1, 0), undefined);
      const e = await a.kvGet('k');
      assert.deepEqual([...e!.value], [3]);
      assert.equal(e!.version, v2);
    } finally {
      a.close();
    }
  });

  test('memcached down → fallback; back → recovered', async () => {
    const own = await startMemcached();
    const s = new FallbackStore(new MemcachedStore({ url: own.url, prefix: 'm4:', timeoutMs: 100 }), { logger: quiet, timeoutMs: 100, fallback: true, retryMs: 100 });
    try {
      assert.equal(await s.counterAdd('x', 1, 3_600_000), 1);
      await own.stop();
      for (let i = 0; i < 5; i++) assert.equal(typeof (await s.counterAdd('x', 1, 3_600_000)), 'number');
      assert.ok(s.fallbacks >= 5);
      const back = await startMemcached(own.port);
      try {
        let recovered = false;
        for (let i = 0; i < 100 && !recovered; i++) {
          const before = s.fallbacks;
          await s.counterAdd('y', 1, 3_600_000);
          recovered = s.fallbacks === before;
          if (!recovered) await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(recovered, 'answers come from memcached again');
      } finally {
        await s.close();
        await back.stop();
      }
    } finally {
      await own.stop();
    }
  });
});
