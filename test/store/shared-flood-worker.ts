/** Worker for shared-store.test.ts: floods one shared store for `ms` (bounded by count). */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedStore } from '../../host/src/store/shared.ts';

const { sab, op, ms, start } = workerData as { sab: SharedArrayBuffer; op: 'bucket' | 'counter' | 'kv'; ms: number; start: Int32Array };
const store = new SharedStore(sab);
// Start together: wait on the shared start flag (bounded); every thread stops at the same
// absolute time (release + ms), however late the scheduler woke it.
Atomics.wait(start, 0, 0, 5000);
const end = new Float64Array(start.buffer, 8, 1)[0]! + ms;
let admitted = 0;
let tries = 0;
const seen: number[] = [];
const t0 = Date.now();
for (let i = 0; i < 100_000_000 && Date.now() < end; i++) {
  tries++;
  if (op === 'bucket') {
    if (store.tokenBucketTake('flood', 100, 10, 1).allowed) admitted++;
  } else if (op === 'counter') {
    seen.push(store.counterAdd('count', 1, 3_600_000));
    if (seen.length >= 20_000) break;
  } else {
    // KV: optimistic increments through compare-and-swap; every success must be unique.
    for (let k = 0; k < 1000; k++) {
      const cur = store.kvGet('n');
      const n = cur ? new DataView(cur.value.buffer).getUint32(0) : 0;
      const next = new Uint8Array(4);
      new DataView(next.buffer).setUint32(0, n + 1);
      if (store.kvCas('n', next, cur?.version, 0) !== undefined) {
        seen.push(n + 1);
        break;
      }
    }
    if (seen.length >= 2_000) break;
  }
}
parentPort!.postMessage({ admitted, tries, seen, elapsedMs: Date.now() - t0 });
