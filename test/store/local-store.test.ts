import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalStore } from '../../host/src/store/local.ts';

function store(): LocalStore & { t: number } {
  const s = new LocalStore({ maxEntries: 3 }) as LocalStore & { t: number };
  s.t = 1_000_000;
  s.now = () => s.t;
  return s;
}

test('counterAdd counts within a fixed window and starts over in the next', () => {
  const s = store();
  assert.equal(s.counterAdd('a', 1, 1000), 1);
  assert.equal(s.counterAdd('a', 2, 1000), 3);
  s.t += 999;
  assert.equal(s.counterAdd('a', 1, 1000), 4);
  s.t += 1;
  assert.equal(s.counterAdd('a', 1, 1000), 1);
  s.close();
});

test('token bucket: burst, refill at the rate, retry-after and reset', () => {
  const s = store();
  for (let i = 0; i < 5; i++) assert.equal(s.tokenBucketTake('k', 10, 5, 1).allowed, true);
  const denied = s.tokenBucketTake('k', 10, 5, 1);
  assert.equal(denied.allowed, false);
  assert.equal(denied.remaining, 0);
  assert.equal(denied.retryAfterMs, 100);
  s.t += 100;
  const again = s.tokenBucketTake('k', 10, 5, 1);
  assert.equal(again.allowed, true);
  assert.equal(again.resetMs, 500);
  s.t += 10_000;
  assert.equal(s.tokenBucketTake('k', 10, 5, 1).remaining, 4, 'refill stops at burst');
  s.close();
});

test('kv compare-and-swap: create-if-absent, versioned update, stale write refused, ttl', () => {
  const s = store();
  const v1 = s.kvCas('x', new Uint8Array([1]), undefined, 0);
  assert.ok(v1 !== undefined);
  assert.equal(s.kvCas('x', new Uint8Array([9]), undefined, 0), undefined, 'absent-only write fails when present');
  const v2 = s.kvCas('x', new Uint8Array([2]), v1, 0);
  assert.ok(v2 !== undefined && v2 > v1);
  assert.equal(s.kvCas('x', new Uint8Array([3]), v1, 0), undefined, 'stale version refused');
  assert.deepEqual([...s.kvGet('x')!.value], [2]);
  s.kvCas('t', new Uint8Array([1]), undefined, 50);
  s.t += 51;
  assert.equal(s.kvGet('t'), undefined);
  s.close();
});

test('memory is bounded: the oldest entries are evicted past maxEntries', () => {
  const s = store();
  for (const k of ['a', 'b', 'c', 'd']) s.counterAdd(k, 1, 60_000);
  assert.equal(s.counterAdd('a', 1, 60_000), 1, 'a was evicted and starts over');
  assert.equal(s.counterAdd('d', 1, 60_000), 2);
  s.close();
});
