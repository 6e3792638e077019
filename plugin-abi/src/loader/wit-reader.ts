/**
 * `componentWit` through the wit-worker thread (see wit-worker.ts for why). One thread
 * serves every load of a burst (startup, a reload) and exits after a short idle time.
 */
import { Worker } from 'node:worker_threads';
import { ASSETS, extractedFile } from '../../../host/src/assets.ts';

const IDLE_MS = 2_000;

let worker: Worker | undefined;
let idle: NodeJS.Timeout | undefined;
let nextId = 0;
const waiting = new Map<number, { resolve: (wit: string) => void; reject: (e: Error) => void; on: Worker }>();

function thread(): Worker {
  if (worker) return worker;
  const file = extractedFile(ASSETS.witWorker) ?? new URL('./wit-worker.ts', import.meta.url);
  const w = new Worker(file);
  w.unref();
  w.on('message', (m: { id: number; wit?: string; error?: string }) => {
    const p = waiting.get(m.id);
    if (!p) return;
    waiting.delete(m.id);
    if (m.error !== undefined) p.reject(new Error(m.error));
    else p.resolve(m.wit!);
    if (![...waiting.values()].some((p) => p.on === w)) scheduleExit();
  });
  // Only this thread's requests fail: a thread ended for idleness may exit after a new one
  // took the next load.
  const fail = (err: Error): void => {
    if (worker === w) worker = undefined;
    for (const [id, p] of waiting) {
      if (p.on !== w) continue;
      waiting.delete(id);
      p.reject(err);
    }
  };
  w.on('error', fail);
  w.on('exit', (code) => fail(new Error(`the WIT reader thread exited (${code})`)));
  worker = w;
  return w;
}

function scheduleExit(): void {
  clearTimeout(idle);
  idle = setTimeout(() => {
    const w = worker;
    worker = undefined;
    // Its exit comes later, maybe after a new thread took new requests: it must not fail them.
    w?.removeAllListeners('exit');
    w?.removeAllListeners('error');
    void w?.terminate();
  }, IDLE_MS);
  idle.unref();
}

/** The component's world as WIT text (wasm-tools' `component wit`). */
export function componentWitIsolated(bytes: Uint8Array): Promise<string> {
  clearTimeout(idle);
  const id = nextId++;
  const w = thread();
  return new Promise((resolve, reject) => {
    waiting.set(id, { resolve, reject, on: w });
    w.postMessage({ id, bytes });
  });
}
