import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FallbackStore, RedisStore } from '../../host/src/store/redis.ts';
import { Registry } from 'prom-client';
import { available, startRedis, type ServerProc } from '../helpers/servers.ts';
import { quiet } from '../helpers/weir.ts';

const skip = available('redis-server') ? false : 'redis-server is not installed';

/** Two stores = two Weir instances on one Redis. A flood from both for ~1 s, bounded by count. */
async function flood(a: RedisStore | FallbackStore, b: RedisStore | FallbackStore, key: string, ms: number): Promise<{ admitted: number; tries: number; errors: number; spanMs: number }> {
  // Connections up first, so the flood is all takes.
  await Promise.all([a.counterAdd('warm', 1, 1000), b.counterAdd('warm', 1, 1000), b.counterAdd('warm', 1, 1000)]);
  const start = Date.now();
  const end = start + ms;
  let admitted = 0;
  let tries = 0;
  let errors = 0;
  const worker = async (s: RedisStore | FallbackStore): Promise<void> => {
    for (let i = 0; i < 100_000 && Date.now() < end; i++) {
      tries++;
      try {
        if ((await s.tokenBucketTake(key, 100, 10, 1)).allowed) admitted++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all([a, a, a, b, b, b].map(worker));
  return { admitted, tries, errors, spanMs: Date.now() - start };
}

describe('redis store', { skip }, () => {
  let redis: ServerProc;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  test('two instances share one token bucket exactly: ≤ burst + rate in the first second', async () => {
    const a = new RedisStore({ url: redis.url, prefix: 't1:', timeoutMs: 500 });
    const b = new RedisStore({ url: redis.url, prefix: 't1:', timeoutMs: 500, poolSize: 2 });
    try {
      const r = await flood(a, b, 'flood', 1000);
      console.log(`redis, 2 instances: admitted ${r.admitted} of ${r.tries} over ${r.spanMs} ms (limit 100/s burst 10 → ≤ ${Math.floor(10 + r.spanMs / 10)})`);
      assert.equal(r.errors, 0);
      // Every take ran on Redis between the first issue and the last answer: the bucket
      // admits at most burst + rate × that span (110 for exactly one second). A loaded
      // machine stretches the span by the last answers' queueing, never the bound.
      assert.ok(r.admitted <= Math.floor(10 + r.spanMs / 10), `admitted ${r.admitted} in ${r.spanMs} ms`);
      // Lower bound from the time actually flooded (a loaded machine may issue fewer takes).
      assert.ok(r.admitted >= Math.min(100, Math.floor(10 + r.spanMs / 10) - 10), `admitted ${r.admitted} in ${r.spanMs} ms: a shared bucket refills at 100/s`);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('counters, retry-after and kv compare-and-swap across two instances', async () => {
    const a = new RedisStore({ url: redis.url, prefix: 't2:', timeoutMs: 500 });
    const b = new RedisStore({ url: redis.url, prefix: 't2:', timeoutMs: 500 });
    try {
      const got = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).counterAdd('c', 1, 3_600_000)));
      assert.deepEqual([...got].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1));
      for (let i = 0; i < 5; i++) assert.equal((await a.tokenBucketTake('slow', 1, 5, 1)).allowed, true);
      const denied = await b.tokenBucketTake('slow', 1, 5, 1);
      assert.equal(denied.allowed, false);
      assert.ok(denied.retryAfterMs > 900 && denied.retryAfterMs <= 1000, `retry ${denied.retryAfterMs}`);
      assert.equal(await a.kvGet('k'), undefined);
      const v1 = await a.kvCas('k', new Uint8Array([1, 2]), undefined, 0);
      assert.ok(v1 !== undefined);
      assert.equal(await b.kvCas('k', new Uint8Array([9]), undefined, 0), undefined, 'create-if-absent refused');
      const e = await b.kvGet('k');
      assert.deepEqual([...e!.value], [1, 2]);
      assert.equal(e!.version, v1);
      const v2 = await b.kvCas('k', new Uint8Array([3]), v1, 0);
      assert.ok(v2 !== undefined && v2 > v1!);
      assert.equal(await a.kvCas('k', new Uint8Array([4]), v1, 0), undefined, 'stale version refused');
      assert.deepEqual([...(await a.kvGet('k'))!.value], [3]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('redis killed mid-run → local fallback (counted), restarted → recovered', async () => {
    const own = await startRedis();
    const registry = new Registry();
    const s = new FallbackStore(new RedisStore({ url: own.url, prefix: 't3:', timeoutMs: 50 }), { logger: quiet, registry, timeoutMs: 50, fallback: true, retryMs: 100 });
    const strict = new FallbackStore(new RedisStore({ url: own.url, prefix: 't3:', timeoutMs: 50 }), { logger: quiet, timeoutMs: 50, fallback: false, retryMs: 100 });
    try {
      assert.equal(await s.counterAdd('x', 1, 3_600_000), 1);
      // Killed mid-flood: 4 concurrent loops keep calling; none of them sees an error.
      let errors = 0;
      let calls = 0;
      let stop = false;
      const loops = Array.from({ length: 4 }, async () => {
        for (let i = 0; i < 5000 && !stop; i++) {
          calls++;
          try {
            await s.counterAdd('mid', 1, 3_600_000);
          } catch {
            errors++;
          }
        }
      });
      await new Promise((r) => setTimeout(r, 100));
      await own.stop();
      await new Promise((r) => setTimeout(r, 200));
      stop = true;
      await Promise.all(loops);
      assert.equal(errors, 0, `errors during the outage (${calls} calls)`);
      assert.ok(s.fallbacks > 0);
      // While down: answers keep coming (local semantics), nothing throws.
      const t0 = performance.now();
      let allowed = 0;
      const fb0 = s.fallbacks;
      for (let i = 0; i < 30; i++) if ((await s.tokenBucketTake('fb', 100, 10, 1)).allowed) allowed++;
      const downMs = performance.now() - t0;
      assert.ok(allowed <= 11, `fallback bucket keeps the limit: ${allowed}`);
      assert.equal(s.fallbacks - fb0, 30);
      await assert.rejects(Promise.resolve(strict.counterAdd('x', 1, 1000)), 'without fallback, calls fail');
      const metricText = await registry.metrics();
      assert.match(metricText, /weir_store_fallback_total\{backend="redis"\} \d+/);
      assert.match(metricText, /weir_store_remote_up\{backend="redis"\} 0/);
      console.log(`redis killed mid-flood: ${calls} calls, 0 errors; then 30 bucket takes answered locally in ${downMs.toFixed(0)} ms, ${allowed} allowed; fallbacks=${s.fallbacks}`);
      const back = await startRedis(own.port);
      try {
        // Recovery: bounded polling until an answer comes from Redis again.
        let recovered = false;
        for (let i = 0; i < 100 && !recovered; i++) {
          const before = s.fallbacks;
          await s.counterAdd('y', 1, 3_600_000);
          recovered = s.fallbacks === before;
          if (!recovered) await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(recovered, 'answers come from redis again');
        assert.equal(await s.counterAdd('y2', 5, 3_600_000), 5);
        assert.match(await registry.metrics(), /weir_store_remote_up\{backend="redis"\} 1/);
      } finally {
        await s.close();
        await strict.close();
        await back.stop();
      }
    } finally {
      await own.stop();
    }
  });
});

describe('redis stalled (SIGSTOP) past its timeout', { skip }, () => {
  test('calls fall back after redis-timeout-ms, then at once while down; SIGCONT → recovered', async () => {
    const own = await startRedis();
    const s = new FallbackStore(new RedisStore({ url: own.url, prefix: 't4:', timeoutMs: 50 }), { logger: quiet, timeoutMs: 50, fallback: true, retryMs: 200 });
    try {
      assert.equal(await s.counterAdd('x', 1, 3_600_000), 1);
      process.kill(own.proc.pid!, 'SIGSTOP');
      const t0 = performance.now();
      await s.counterAdd('x', 1, 3_600_000);
      const first = performance.now() - t0;
      const t1 = performance.now();
      for (let i = 0; i < 20; i++) await s.counterAdd('x', 1, 3_600_000);
      const next = (performance.now() - t1) / 20;
      assert.equal(s.fallbacks, 21);
      assert.ok(first >= 45, `the first call waited out the deadline (${first.toFixed(1)} ms)`);
      console.log(`redis stalled: first call fell back after ${first.toFixed(1)} ms (timeout 50), the next ones in ${next.toFixed(3)} ms each`);
      process.kill(own.proc.pid!, 'SIGCONT');
      let recovered = false;
      for (let i = 0; i < 100 && !recovered; i++) {
        const before = s.fallbacks;
        await s.counterAdd('y', 1, 3_600_000);
        recovered = s.fallbacks === before;
        if (!recovered) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(recovered);
    } finally {
      try {
        process.kill(own.proc.pid!, 'SIGCONT');
      } catch {
        // already gone
      }
      await s.close();
      await own.stop();
    }
  });
});
