/**
 * Plugin worker thread (isolation "worker"). piscina starts it and sends it plugin loads and
 * one long `serve` task; hook calls come over the serve task's SharedArrayBuffer channel
 * (worker-channel.ts). The proxy pins each request to one thread so a plugin's per-request
 * state survives between phases.
 *
 *   proxy thread ── call {hook, members, head…} in a slot ──► this thread: each member in
 *                ◄─ one answer per member, written as it finishes ── order, its mutations
 *                                                                     applied for the next
 *
 * Plugins here are metered like inline ones; the wall-clock deadline is also enforced by the
 * proxy thread, which sees the member running and since when, and has piscina replace this
 * thread when it is past its deadline.
 */
import { BroadcastChannel, workerData } from 'node:worker_threads';
import pino from 'pino';
import { Registry } from 'prom-client';
import { WeirError, isWeirError } from '../../../host/src/errors.ts';
import { LocalStore } from '../../../host/src/store/local.ts';
import { SharedStore } from '../../../host/src/store/shared.ts';
import type { RequestContext } from '../../../host/src/pipeline/phases.ts';
import * as codec from '../../generated/codec.ts';
import type { CoreInstance } from '../../generated/codec.ts';
import type { HookName } from './metrics.ts';
import type * as W from '../../generated/types.ts';
import { HostServices } from './host-services.ts';
import { PluginMetrics } from './metrics.ts';
import { WasmPlugin, type Hold } from './plugin.ts';
import { ChannelMemory, serveChannel, type ChannelProgress } from './worker-channel.ts';
import type { TraceOp, WorkerLoad, WorkerLogBatch, WorkerMember, WorkerServe, WorkerTask, WorkerTicks } from './worker-protocol.ts';
import type { RequestSpan } from '../../../host/src/observability/tracing.ts';
import { viewOfWire, type WireRequestHead } from './exchange.ts';

// The proxy passes its log level (piscina's workerData); WEIR_WORKER_LOG_LEVEL overrides it.
const data = workerData as { logLevel?: string; logChannel?: string; storeSab?: SharedArrayBuffer } | undefined;
const level = (process.env['WEIR_WORKER_LOG_LEVEL'] ?? data?.logLevel ?? 'info') as 'info';
// Lines go to the proxy thread as they are written (its logger writes them), so a call that
// is killed at its deadline keeps what it logged, a panic message included.
const channel = data?.logChannel ? new BroadcastChannel(data.logChannel) : undefined;
channel?.unref();
const logger = pino({ level, base: undefined, timestamp: false }, {
  write(line: string): void {
    const { level: n, msg, ...fields } = JSON.parse(line) as { level: number; msg: string };
    const out = { level: pino.levels.labels[n] ?? 'info', msg, fields };
    if (channel) channel.postMessage(out);
    else process.stdout.write(line);
  },
});
const registry = new Registry();
const deps = {
  // Shared with every other worker thread (and the proxy threads when they share one).
  services: new HostServices({ logger, registry, store: data?.storeSab ? new SharedStore(data.storeSab) : new LocalStore() }),
  metrics: new PluginMetrics(registry),
  logger,
};
const plugins = new Map<string, WasmPlugin>();
/** Per request and plugin: the instance and context id (released on on-log). */
const holds = new Map<string, Hold>();

// The proxy thread says a request's client left: its call suspended in a callout is given up.
const cancels = data?.logChannel ? new BroadcastChannel(`${data.logChannel}-cancel`) : undefined;
cancels?.unref();
if (cancels) {
  cancels.onmessage = (e) => {
    const data = (e as { data: string | WorkerTicks }).data;
    if (typeof data !== 'string') {
      for (const p of plugins.values()) {
        if (data.ticks) p.startTicks();
        else p.stopTicks();
      }
      return;
    }
    const prefix = `${data}\u0000`;
    for (const [k, hold] of holds) if (k.startsWith(prefix)) plugins.get(k.slice(prefix.length))?.cancel(hold);
  };
}

function plugin(m: WorkerMember): WasmPlugin {
  const p = plugins.get(m.key);
  if (!p) throw new WeirError('WEIR_ERR_PLUGIN_LOAD', `plugin ${m.config.name} is not loaded in this worker`);
  return p;
}

async function load(task: WorkerLoad): Promise<void> {
  const geoNeeded = task.version.hostFunctions.includes('geo-country');
  if (geoNeeded && !deps.services.geo) deps.services.geo = await (await import('../../../host/src/geo/geo.ts')).openGeoDb();
  let p = plugins.get(task.key);
  if (p) p.install(task.version);
  else plugins.set(task.key, (p = WasmPlugin.fromVersion(task.config, task.version, deps)));
  // This thread runs the plugin's hooks, so its timer too (every thread of the pool ticks).
  if (task.ticks) p.startTicks();
}

/** Applies a plugin's mutations to the head the next member sees (the proxy re-validates all). */
function preview(head: WireRequestHead, muts: readonly W.Mutation[]): WireRequestHead {
  const h = { ...head, headers: [...head.headers] };
  for (const m of muts) {
    if (m.tag === 'set-header' || m.tag === 'remove-header') {
      const name = (m.tag === 'set-header' ? m.val.name : m.val).toLowerCase();
      h.headers = h.headers.filter((x) => x.name !== name);
      if (m.tag === 'set-header') h.headers.push({ name, value: m.val.value });
    } else if (m.tag === 'add-header') h.headers.push({ name: m.val.name.toLowerCase(), value: m.val.value });
    else if (m.tag === 'set-path') h.path = m.val;
    else if (m.tag === 'set-query') h.query = m.val;
    else if (m.tag === 'set-method') h.method = m.val;
    else if (m.tag === 'set-authority') h.authority = m.val;
  }
  return h;
}

/** Calls a hook through JSPI when the plugin needs it, directly otherwise. */
function invoke<T>(p: WasmPlugin, hold: Hold, ctx: RequestContext, hook: HookName, sync: (c: CoreInstance, id: bigint) => T, async: (c: CoreInstance, id: bigint) => Promise<T>): T | Promise<T> {
  return p.version.jspi ? p.callAsync(hold, ctx, hook, async) : p.call(hold, ctx, hook, sync);
}

/** piscina's entry: a plugin load, or the serve task (resolves when the channel closes). */
export default async function task(t: WorkerLoad | WorkerServe): Promise<void> {
  if (t.op === 'load') return load(t);
  return serveChannel(new ChannelMemory(t.sab), t.port, t.wake, (call, progress) => {
    const c = call as WorkerTask | WorkerLogBatch;
    return c.op === 'log-batch' ? logBatch(c, progress) : run(c, progress);
  });
}

/** Finished requests' on-log calls; they answer nothing. */
async function logBatch(batch: WorkerLogBatch, progress: ChannelProgress): Promise<void> {
  progress.start(0);
  const quiet: ChannelProgress = { start() {}, answer() {} };
  for (const item of batch.items) {
    if (item.members.every((m) => plugins.has(m.key))) await run({ hook: 'on-log', requestId: item.requestId, members: item.members, summary: item.summary }, quiet);
  }
}

/** A request span on this thread: records what hooks add, for the proxy thread to replay. */
function traceCollector(ops: TraceOp[]): RequestSpan {
  return {
    traceId: '',
    sampled: true,
    hook: (plugin, hook, start, ms, error) => void ops.push({ op: 'hook', plugin, hook, startEpochMs: performance.timeOrigin + start, ms, ...(error === undefined ? {} : { error }) }),
    setAttribute: (key, value) => void ops.push({ op: 'attr', key, value }),
    addEvent: (name, attributes) => void ops.push({ op: 'event', name, attributes: attributes as Record<string, string | number | boolean> | undefined }),
  };
}

/** A traced task's answers carry the trace ops recorded since the previous answer. */
function tracedProgress(progress: ChannelProgress, ops: TraceOp[]): ChannelProgress {
  return {
    start: (i) => progress.start(i),
    answer: (v) => progress.answer(ops.length === 0 ? v : { ...(v as object), trace: ops.splice(0) }),
  };
}

/** One phase for the call's members, in order; each answer goes out as the member finishes. */
async function run(task: WorkerTask, channel: ChannelProgress): Promise<void> {
  const missing = task.members.filter((m) => !plugins.has(m.key)).map((m) => m.key);
  if (missing.length) return channel.answer({ missing });
  let progress = channel;
  let trace: RequestSpan | undefined;
  if (task.traced === true) {
    const ops: TraceOp[] = [];
    trace = traceCollector(ops);
    progress = tracedProgress(channel, ops);
  }
  let head = task.head;
  // What the exchange functions read: the shipped head, rebuilt after each member's mutations.
  const view = (): RequestContext => ({ id: task.requestId, trace, ...(head ? viewOfWire(head, task.response) : {}) }) as unknown as RequestContext;
  let ctx = view();
  let chunk = task.chunk;
  for (let i = 0; i < task.members.length; i++) {
    const m = task.members[i]!;
    const holdKey = `${task.requestId}\u0000${m.key}`;
    try {
      const p = plugin(m);
      let hold = holds.get(holdKey);
      if (!hold) {
        if (task.hook === 'on-log') continue; // never called on this thread: nothing to release
        holds.set(holdKey, (hold = p.begin()));
      }
      progress.start(i);
      switch (task.hook) {
        case 'on-request-headers': {
          const h = head!;
          const d = await invoke(p, hold, ctx, task.hook, (c, id) => codec.callOnRequestHeaders(c, id), (c, id) => codec.callOnRequestHeadersAsync(c, id));
          progress.answer({ i, key: m.key, decision: d });
          if (d.tag === 'respond') return;
          if (d.tag === 'mutate' || d.tag === 'pause') {
            head = preview(h, d.tag === 'mutate' ? d.val : d.val.mutations);
            ctx = view();
          }
          break;
        }
        case 'on-response-headers': {
          const d = await invoke(p, hold, ctx, task.hook, (c, id) => codec.callOnResponseHeaders(c, id), (c, id) => codec.callOnResponseHeadersAsync(c, id));
          progress.answer({ i, key: m.key, decision: d });
          if (d.tag === 'respond') return;
          break;
        }
        case 'on-request-body':
        case 'on-response-body': {
          const req = task.hook === 'on-request-body';
          const data = chunk!;
          const end = task.end === true;
          const d = await invoke(p, hold, ctx, task.hook,
            (c, id) => (req ? codec.callOnRequestBody : codec.callOnResponseBody)(c, id, data, end),
            (c, id) => (req ? codec.callOnRequestBodyAsync : codec.callOnResponseBodyAsync)(c, id, data, end));
          progress.answer({ i, key: m.key, body: d });
          if (d.tag === 'respond') return;
          if (d.tag === 'replace') chunk = d.val;
          break;
        }
        case 'select-upstream': {
          const index = await invoke(p, hold, ctx, task.hook,
            (c, id) => codec.callSelectUpstream(c, id, task.upstream!, task.targets!),
            (c, id) => codec.callSelectUpstreamAsync(c, id, task.upstream!, task.targets!));
          if (index !== undefined) {
            progress.answer({ i, key: m.key, index });
            return;
          }
          break;
        }
        case 'on-log': {
          holds.delete(holdKey);
          try {
            if (p.version.hooks.has('on-log') && !hold.inst.dead) {
              await invoke(p, hold, ctx, task.hook, (c, id) => codec.callOnLog(c, id, task.summary!), (c, id) => codec.callOnLogAsync(c, id, task.summary!));
            }
          } finally {
            p.end(hold);
          }
          progress.answer({ i, key: m.key });
          break;
        }
        default:
          throw new Error(`unexpected hook ${task.hook}`);
      }
    } catch (err) {
      const code = isWeirError(err) ? err.code : 'WEIR_ERR_PLUGIN_TRAP';
      progress.answer({ i, key: m.key, error: { code, message: (err as Error).message } });
      if (task.hook === 'on-log') holds.delete(holdKey);
      if (m.failureMode === 'closed' && task.hook !== 'on-log') return;
    }
  }
}
