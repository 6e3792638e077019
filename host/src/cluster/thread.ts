/**
 * A proxy thread: a whole Weir instance on the shared ports (SO_REUSEPORT: the kernel
 * spreads connections over the threads), with the plugins' default store and upstream
 * health in the supervisor's SharedArrayBuffer. Reload and shutdown come from the
 * supervisor; /metrics answers with the supervisor's aggregate of every thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SharedStore, SharedTargetTable } from '../store/shared.ts';
import { useSharedTargetState } from '../upstream/upstream.ts';
import { startWeir, type Weir } from '../weir.ts';
import type { FromThread, ThreadData, ToThread } from './protocol.ts';

const data = workerData as ThreadData;
const port = parentPort!;
const send = (m: FromThread): void => port.postMessage(m);

/** Aggregates this thread asked the supervisor for, by request id. */
const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
let nextId = 1;

function aggregate(): Promise<string> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    // The supervisor answers within its own 2 s gathering bound; this one covers its absence.
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error('the supervisor did not answer the metrics request'));
    }, 5_000);
    timer.unref();
    const settle = <T>(f: (v: T) => void) => (v: T): void => {
      clearTimeout(timer);
      f(v);
    };
    pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
    send({ t: 'metrics-request', id });
  });
}

async function main(): Promise<void> {
  // Thread 0 runs the active health checks; every thread reads and records into the slots.
  useSharedTargetState(new SharedTargetTable(data.sab), data.index === 0);
  let weir: Weir;
  try {
    weir = await startWeir({
      configPath: data.configPath,
      skipFileChecks: data.skipFileChecks,
      store: new SharedStore(data.sab),
      reusePort: true,
      // The separate metrics port is served once (it shows the aggregate anyway).
      metricsServer: data.index === 0,
      watch: false,
      signals: false,
    });
  } catch (err) {
    send({ t: 'start-failed', error: (err as Error).message, code: (err as { code?: string }).code });
    return;
  }
  const registry = weir.metrics.registry;
  const own = registry.getMetricsAsJSON.bind(registry);
  // Both /metrics paths (builtin route, metrics listener) render through registry.metrics().
  registry.metrics = aggregate;
  const status = weir.core.status.bind(weir.core);
  weir.core.status = () => ({ ...(status() as object), thread: data.index });

  port.on('message', (m: ToThread) => {
    switch (m.t) {
      case 'reload':
        void weir.reload().then((r) => send({ t: 'reloaded', id: m.id, ok: r.ok, generation: r.generation, error: r.error }));
        return;
      case 'close':
        void weir.close().finally(() => {
          send({ t: 'closed' });
          // Timers of plugin pools or stores must not keep a drained thread alive.
          process.exit(0);
        });
        return;
      case 'metrics-json':
        void own().then(
          (metrics) => send({ t: 'metrics-json', id: m.id, metrics }),
          () => send({ t: 'metrics-json', id: m.id, metrics: [] }),
        );
        return;
      case 'metrics-text': {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (m.text !== undefined) p?.resolve(m.text);
        else p?.reject(new Error(m.error ?? 'metrics aggregation failed'));
        return;
      }
    }
  });
  const listeners: Record<string, { host: string; port: number }> = {};
  for (const l of weir.config.listeners) listeners[l.name] = weir.address(l.name);
  send({ t: 'ready', listeners });
}

void main();
