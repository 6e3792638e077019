import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SharedStore, SharedTargetTable, createSharedBuffer } from '../../host/src/store/shared.ts';

interface Out { admitted: number; tries: number; seen: number[]; elapsedMs: number }

async function flood(op: 'bucket' | 'counter' | 'kv', threads: number, ms: number, sab = createSharedBuffer({ groups: 64 })): Promise<Out[]> {
  // [0] release flag (i32), [8] release time (f64).
  const start = new Int32Array(new SharedArrayBuffer(16), 0, 1);
  const workers = Array.from({ length: threads }, () => new Worker(new URL('./shared-flood-worker.ts', import.meta.url), { workerData: { sab, op, ms, start } }));
  const outs = workers.map((w) => new Promise<Out>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  }));
  // Let every worker reach its wait, then release them at once.
  await new Promise((r) => setTimeout(r, 300));
  new Float64Array(start.buffer, 8, 1)[0] = Date.now();
  Atomics.store(start, 0, 1);
  Atomics.notify(start, 0);
  try {
    return await Promise.all(outs);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

test('token bucket 100/s burst 10 across 2 threads admits ≤ 110 in the first second', async () => {
  const outs = await flood('bucket', 2, 1000);
  const admitted = outs.reduce((n, o) => n + o.admitted, 0);
  const tries = outs.reduce((n, o) => n + o.tries, 0);
  console.log(`shared memory, 2 threads: admitted ${admitted} of ${tries} (${outs.map((o) => o.admitted).join(' + ')}) in 1 s; limit ≤ 110`);
  assert.ok(outs.every((o) => o.tries > 1000), 'both threads flooded');
  assert.ok(admitted <= 110, `admitted ${admitted}`);
  const ms = Math.min(...outs.map((o) => o.elapsedMs));
  assert.ok(admitted >= Math.floor(10 + ms / 10) - 1, `admitted ${admitted} in ${ms} ms: the shared bucket refills at 100/s`);
});

test('counters across 4 threads: every value handed out exactly once', async () => {
  const outs = await flood('counter', 4, 500);
  const all = outs.flatMap((o) => o.seen).sort((a, b) => a - b);
  assert.ok(all.length > 1000);
  assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => i + 1));
});

test('kv compare-and-swap across 3 threads: no lost update', async () => {
  const outs = await flood('kv', 3, 500);
  const all = outs.flatMap((o) => o.seen).sort((a, b) => a - b);
  assert.ok(all.length > 100);
  assert.deepEqual(all, Array.from({ length: all.length }, (_, i) => i + 1));
});

test('same semantics as the local store on one thread (clock injected)', () => {
  const s = new SharedStore(createSharedBuffer({ groups: 4, slotsPerGroup: 2, kvGroups: 2, kvSlotsPerGroup: 2, kvValueMax: 8 }));
  let t = 1_000_000;
  s.now = () => t;
  assert.equal(s.counterAdd('a', 1, 1000), 1);
  assert.equal(s.counterAdd('a', 2, 1000), 3);
  t += 1000;
  assert.equal(s.counterAdd('a', 1, 1000), 1, 'next window');
  for (let i = 0; i < 5; i++) assert.equal(s.tokenBucketTake('k', 10, 5, 1).allowed, true);
  const denied = s.tokenBucketTake('k', 10, 5, 1);
  assert.equal(denied.allowed, false);
  assert.equal(denied.retryAfterMs, 100);
  t += 100;
  assert.equal(s.tokenBucketTake('k', 10, 5, 1).allowed, true);
  assert.equal(s.counterAdd('k', 1, 1000), 1, 'a counter and a bucket with one name are different entries');
  const v1 = s.kvCas('x', new Uint8Array([1]), undefined, 500)!;
  assert.equal(s.kvCas('x', new Uint8Array([2]), undefined, 0), undefined);
  assert.equal(s.kvCas('y', new Uint8Array([2]), 5n, 0), undefined, 'update of an absent key');
  assert.equal(s.kvGet('y'), undefined);
  assert.deepEqual([...s.kvGet('x')!.value], [1]);
  assert.throws(() => s.kvCas('z', new Uint8Array(9), undefined, 0), /8-byte limit/);
  t += 500;
  assert.equal(s.kvGet('x'), undefined, 'ttl');
  assert.ok(s.kvCas('x', new Uint8Array([3]), undefined, 0)! > v1);
  // Fixed memory: many keys evict, never fail.
  for (let i = 0; i < 100; i++) s.counterAdd(`many${i}`, 1, 60_000);
  assert.ok(s.evictions > 0);
});

test('target table: one slot per upstream + address, seen by every attachment', () => {
  const sab = createSharedBuffer({ targetSlots: 8 });
  const a = new SharedTargetTable(sab);
  const b = new SharedTargetTable(sab);
  const ta = a.slot('api', '10.0.0.1:80')!;
  const tb = b.slot('api', '10.0.0.1:80')!;
  const other = b.slot('api', '10.0.0.2:80')!;
  assert.equal(tb.activeHealthy(), true);
  ta.setActiveHealthy(false);
  assert.equal(tb.activeHealthy(), false);
  assert.equal(other.activeHealthy(), true);
  for (let i = 1; i <= 5; i++) assert.equal(ta.failure(1000, (n) => (n >= 5 ? 5000 : 0)), i);
  assert.equal(tb.consecutiveFailures(), 5);
  assert.equal(tb.ejectedUntil(), 6000);
  tb.success();
  assert.equal(ta.consecutiveFailures(), 0);
  assert.equal(ta.ejectedUntil(), 0);
  for (let i = 0; i < 10; i++) a.slot('many', String(i));
  assert.equal(a.slot('overflow', 'x'), undefined, 'a full table leaves the caller on local state');
});
