// The SharedArrayBuffer channel between the proxy thread and a plugin worker thread, with a
// real piscina thread on the other side: a call past its deadline has the thread replaced
// mid-call (answers before the member kept, that member blamed, calls still waiting run on
// the replacement), calls and answers larger than a slot, and more concurrent calls than slots.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '../../host/src/observability/logger.ts';
import { SLOT_BYTES } from '../../plugin-abi/src/runtime/worker-channel.ts';
import { WorkerThread, type CallAnswer } from '../../plugin-abi/src/runtime/worker-thread.ts';
import type { EchoCall } from '../fixtures/workers/channel-worker.ts';

const logger = createLogger({ level: 'silent', format: 'json', sync: true });

function thread(slots?: number): WorkerThread {
  return new WorkerThread({ filename: new URL('../fixtures/workers/channel-worker.ts', import.meta.url).href, workerData: {}, logger, loads: () => [], ...(slots ? { slots } : {}) });
}

type Echo = { i: number; n: number; thread: number; got: number; pad: string };
const answers = (a: CallAnswer): Echo[] => a.answers as Echo[];

test('a member past its deadline: the thread is replaced mid-call, answers before it are kept, waiting calls run on the replacement', async () => {
  const t = thread();
  try {
    const first = answers(await t.call({ n: 0, answers: 1 } satisfies EchoCall, [5000]));
    const before = first[0]!.thread;
    // Member 2 spins; calls posted behind it wait in their slots.
    const stuck = t.call({ n: 1, answers: 4, spinAt: 2 } satisfies EchoCall, [5000, 5000, 150, 5000]);
    const queued = Array.from({ length: 3 }, (_, k) => t.call({ n: 10 + k, answers: 2 } satisfies EchoCall, [5000]));
    const s = await stuck;
    assert.deepEqual(answers(s).map((a) => a.i), [0, 1], 'the two members that finished keep their answers');
    assert.equal(s.stopped?.member, 2, 'the member running is the one blamed');
    assert.equal(s.stopped?.timeout, true);
    assert.match(s.stopped!.message, /150 ms deadline/);
    for (const [k, q] of (await Promise.all(queued)).entries()) {
      assert.equal(q.stopped, undefined, 'a call not started yet is not failed with its co-tenant');
      assert.deepEqual(answers(q).map((a) => [a.n, a.i]), [[10 + k, 0], [10 + k, 1]]);
      assert.notEqual(answers(q)[0]!.thread, before, 'it ran on the replacement thread');
    }
    assert.equal(t.replacements, 1);
  } finally {
    await t.close();
  }
});

test('a call and answers larger than a slot go over the port, in order with the others', async () => {
  const t = thread();
  try {
    const big = 'x'.repeat(SLOT_BYTES * 3);
    const [a, b] = await Promise.all([
      t.call({ n: 1, answers: 3, size: SLOT_BYTES * 2, pad: big } satisfies EchoCall, [5000]),
      t.call({ n: 2, answers: 2, size: 10 } satisfies EchoCall, [5000]),
    ]);
    assert.deepEqual(answers(a).map((x) => [x.i, x.got, x.pad.length]), [[0, big.length, SLOT_BYTES * 2], [1, big.length, SLOT_BYTES * 2], [2, big.length, SLOT_BYTES * 2]]);
    assert.deepEqual(answers(b).map((x) => [x.n, x.i, x.pad]), [[2, 0, 'y'.repeat(10)], [2, 1, 'y'.repeat(10)]]);
  } finally {
    await t.close();
  }
});

test('more concurrent calls than slots: they wait on the proxy side and all are answered, each with its own answers', async () => {
  const t = thread(2);
  try {
    const n = 200;
    const all = await Promise.all(Array.from({ length: n }, (_, k) => t.call({ n: k, answers: 2, size: 100 } satisfies EchoCall, [5000])));
    for (const [k, a] of all.entries()) {
      assert.equal(a.stopped, undefined);
      assert.deepEqual(answers(a).map((x) => [x.n, x.i]), [[k, 0], [k, 1]]);
    }
    assert.equal(t.replacements, 0);
  } finally {
    await t.close();
  }
});

test('a closed thread answers every call with a stop instead of hanging', async () => {
  const t = thread();
  await t.call({ n: 0, answers: 1 } satisfies EchoCall, [5000]);
  await t.close();
  const a = await t.call({ n: 1, answers: 1 } satisfies EchoCall, [5000]);
  assert.deepEqual(a.answers, []);
  assert.match(a.stopped!.message, /closed/);
});
