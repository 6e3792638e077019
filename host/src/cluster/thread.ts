/**
 * A proxy thread: a whole Weir instance on the shared ports (SO_REUSEPORT: the kernel
 * spreads connections over the threads), with the plugins' default store and upstream
 * health in the supervisor's SharedArrayBuffer. Reload and shutdown come from the
 * supervisor; /metrics answers with the supervisor's aggregate of every thread.
 */
import type { Discovered } from '../upstream/discovery.ts';
import { parentPort, workerData } from 'node:worker_threads';
import { SharedStore, SharedTargetTable } from '../store/shared.ts';
import { useSharedTargetState } from '../upstream/upstream.ts';
import { startWeir, type PreparedReload, type ReloadResult, type Weir } from '../weir.ts';
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

/** A prepared reload no commit or abort reached in this long is aborted (the supervisor gave up). */
const PREPARED_MAX_MS = 60_000;

/**
 * This thread's side of a cluster reload: at most one prepared reload at a time, committed
 * or aborted by the supervisor once every thread answered. A finish that arrives before its
 * prepare completed (the supervisor timed out) aborts it as soon as it is ready.
 */
class ThreadReloads {
  private held: { id: number; p: Extract<PreparedReload, { ok: true }>; timer: NodeJS.Timeout } | undefined;
  /** The prepare in progress, and the abort that reached it early. */
  private preparing: { id: number; abort?: string } | undefined;
  private readonly weir: Weir;
  constructor(weir: Weir) {
    this.weir = weir;
  }

  async prepare(id: number, overrides?: Readonly<Record<string, string>>, discovered?: Discovered): Promise<{ ok: boolean; error?: string }> {
    this.release('superseded by a newer reload');
    const preparing: { id: number; abort?: string } = { id };
    this.preparing = preparing;
    const p = await this.weir.prepareReload(overrides, 'api', discovered);
    if (this.preparing === preparing) this.preparing = undefined;
    if (!p.ok) return { ok: false, error: p.result.error };
    if (preparing.abort !== undefined) {
      p.abort(preparing.abort);
      return { ok: false, error: preparing.abort };
    }
    this.release('superseded by a newer reload');
    const timer = setTimeout(() => this.release('no commit from the supervisor'), PREPARED_MAX_MS);
    timer.unref();
    this.held = { id, p, timer };
    return { ok: true };
  }

  finish(prepareId: number, commit: boolean, reason = 'another proxy thread could not apply the configuration'): ReloadResult {
    const h = this.held;
    if (!h || h.id !== prepareId) {
      if (this.preparing?.id === prepareId) this.preparing.abort = commit ? 'the commit came before the prepare finished' : reason;
      return { ok: false, generation: this.weir.core.snapshot.generation, error: reason };
    }
    clearTimeout(h.timer);
    this.held = undefined;
    return commit ? h.p.commit() : h.p.abort(reason);
  }

  private release(reason: string): void {
    const h = this.held;
    if (!h) return;
    clearTimeout(h.timer);
    this.held = undefined;
    h.p.abort(reason);
  }
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
      clusterThread: true,
      ...(data.overrides ? { overrides: data.overrides } : {}),
      ...(data.discovered ? { discovered: data.discovered } : {}),
      watch: false,
      signals: false,
    });
  } catch (err) {
    send({ t: 'start-failed', error: (err as Error).message, code: (err as { code?: string }).code });
    return;
  }
  for (const [upstream, address] of data.drains ?? []) void weir.core.drain(upstream, address, true, 0);
  const registry = weir.metrics.registry;
  const own = registry.getMetricsAsJSON.bind(registry);
  // Both /metrics paths (builtin route, metrics listener) render through registry.metrics().
  registry.metrics = aggregate;
  const status = weir.core.status.bind(weir.core);
  weir.core.status = () => ({ ...(status() as object), thread: data.index });

  const reloads = new ThreadReloads(weir);
  port.on('message', (m: ToThread) => {
    switch (m.t) {
      case 'reload-prepare':
        void reloads.prepare(m.id, m.overrides, m.discovered).then((p) => send({ t: 'prepared', id: m.id, ...p }));
        return;
      case 'admin-state':
        void weir.state().then((value) => send({ t: 'admin-answer', id: m.id, value }));
        return;
      case 'admin-drain':
        void weir.drain(m.upstream, m.address, m.drain, m.timeoutMs).then((value) => send({ t: 'admin-answer', id: m.id, value }));
        return;
      case 'admin-plugin-reload':
        void weir.reloadPlugin(m.name).then((value) => send({ t: 'admin-answer', id: m.id, value }));
        return;
      case 'admin-purge':
        void weir.purge(m.spec).then((value) => send({ t: 'admin-answer', id: m.id, value }));
        return;
      case 'reload-finish': {
        const r = reloads.finish(m.prepareId, m.commit, m.reason);
        send({ t: 'reloaded', id: m.id, ok: r.ok, generation: r.generation, error: r.error });
        return;
      }
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
