/**
 * Worker-isolated plugins on the proxy thread's side. Consecutive worker plugins of a
 * route's chain become one composite Phase, so a phase costs one round trip to a worker
 * whatever the number of plugins. Each request is pinned to one worker thread (a
 * WorkerThread: piscina owns it, calls go over its SharedArrayBuffer channel) for all its
 * phases, so per-request guest state holds. A member past its `timeout-ms` gets its thread
 * replaced and is blamed alone (worker-thread.ts). A plugin alone in its run has a pool of
 * its own; a run of several plugins has a pool of the run's (see runtime.ts), so plugins
 * share threads only with the plugins of the same chain they run next to. Guest logs come
 * back over a BroadcastChannel as they are written, so a call that is then killed keeps them.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { BroadcastChannel } from 'node:worker_threads';
import type { FilterConfig, PluginConfig } from '../../../host/src/config/types.ts';
import { WeirError, type ErrorCode } from '../../../host/src/errors.ts';
import type { Logger } from '../../../host/src/observability/logger.ts';
import type { BodyChunk, BodyMode, BodyResult, HeadersResult, Phase, RequestContext, TargetStats } from '../../../host/src/pipeline/phases.ts';
import { NO_BODY } from '../../../host/src/pipeline/phases.ts';
import type * as W from '../../generated/types.ts';
import { applyDecision, localReply, logSummary, targets, upstreamInfo } from './convert.ts';
import { wireRequestHead, wireResponseHead } from './exchange.ts';
import type { HookName } from './metrics.ts';
import type { PluginVersion, WasmPlugin } from './plugin.ts';
import type { RequestSpan } from '../../../host/src/observability/tracing.ts';
import type { MemberResult, TraceOp, WorkerAnswer, WorkerLoad, WorkerLogBatch, WorkerLogLine, WorkerMember, WorkerTask, WorkerTicks } from './worker-protocol.ts';
import { WorkerThread, type CallStopped } from './worker-thread.ts';
import { pluginWorkerPath } from '../../../host/src/assets.ts';

/** Resolves the worker module for piscina; the single binary extracts it next to itself. */
// pluginWorkerPath(): the extracted bundle in the binary, in every thread that builds pools.
/** Replays a worker's trace ops on the request's span (worker times moved onto this thread's clock). */
function replayTrace(span: RequestSpan, ops: readonly TraceOp[]): void {
  for (const o of ops) {
    if (o.op === 'hook') span.hook(o.plugin, o.hook, o.startEpochMs - performance.timeOrigin, o.ms, o.error);
    else if (o.op === 'attr') span.setAttribute(o.key, o.value);
    else span.addEvent(o.name, o.attributes);
  }
}

export let workerFilename = pluginWorkerPath() ?? new URL('./worker.ts', import.meta.url).href;
export function setWorkerFilename(f: string): void {
  workerFilename = f;
}

export class WorkerPool {
  /** Started on first use (`start`): a pool only a batched run would use never starts. */
  private threads: WorkerThread[] = [];
  private readonly n: number;
  private next = 0;
  private readonly logger: Logger;
  private readonly storeSab: SharedArrayBuffer | undefined;
  private readonly slots: number | undefined;
  private logs: BroadcastChannel | undefined;
  /** Tells the threads that a request is gone: a call of it waiting on a callout is given up. */
  private cancels: BroadcastChannel | undefined;
  /** What every thread must have loaded, replayed to a thread that replaced a terminated one. */
  private readonly loads = new Map<string, WorkerLoad>();
  /** Whether the plugins' on-tick timers run (setTicks). */
  private ticking = true;

  /**
   * `logger`: the proxy's; worker threads log at its level and their lines are written
   * through it. `storeSab`: the SharedStore memory the threads' store calls use. `slots`:
   * calls in flight per thread (more wait on the proxy thread).
   */
  constructor(threads: number, logger: Logger, storeSab?: SharedArrayBuffer, slots?: number) {
    this.n = Math.max(1, Math.min(threads, availableParallelism()));
    this.logger = logger;
    this.storeSab = storeSab;
    this.slots = slots;
  }

  /** Starts the threads (idempotent); each loads every plugin recorded so far. */
  start(): void {
    if (this.threads.length) return;
    const logChannel = `weir-plugin-logs-${randomUUID()}`;
    const logger = this.logger;
    this.logs = new BroadcastChannel(logChannel);
    this.logs.onmessage = (e) => relayLog(logger, (e as { data: WorkerLogLine }).data);
    this.logs.unref();
    this.cancels = new BroadcastChannel(`${logChannel}-cancel`);
    this.cancels.unref();
    const workerData = { logLevel: logger.level, logChannel, storeSab: this.storeSab };
    this.threads = Array.from({ length: this.n }, () => new WorkerThread({ filename: workerFilename, workerData, logger, loads: () => this.loads.values(), ...(this.slots ? { slots: this.slots } : {}) }));
  }

  /** Starts the threads if needed; resolves when each has booted and loaded its plugins. */
  async ready(): Promise<void> {
    this.start();
    await Promise.all(this.threads.map((t) => t.ready()));
  }

  /** Whether this pool runs the plugin of config key `key`. */
  has(key: string): boolean {
    return this.loads.has(key);
  }

  /** The plugin config keys this pool runs. */
  keys(): string[] {
    return [...this.loads.keys()];
  }

  get size(): number {
    return this.n;
  }

  /** Threads replaced so far (deadlines passed, threads lost). */
  get replacements(): number {
    return this.threads.reduce((n, t) => n + t.replacements, 0);
  }

  pick(): number {
    const i = this.next;
    this.next = (i + 1) % this.threads.length;
    return i;
  }

  /**
   * Installs a plugin version in every worker thread (no deadline: this is load time); a
   * pool not started yet records it for its threads' start.
   */
  async load(key: string, config: PluginConfig, version: PluginVersion): Promise<void> {
    const task: WorkerLoad = { op: 'load', key, config, version, ticks: this.ticking };
    this.loads.set(key, task);
    await Promise.all(this.threads.map((t) => t.load(task)));
  }

  /**
   * One call on thread `i`; `timeouts` is each member's `timeout-ms`. A thread that lacks a
   * plugin (it replaced a terminated one while a load was out) loads it and the call is sent again.
   */
  async call(i: number, task: WorkerTask, timeouts: readonly number[]): Promise<{ results: MemberResult[]; stopped?: CallStopped }> {
    this.start();
    const thread = this.threads[i]!;
    for (let attempt = 0; ; attempt++) {
      const a = await thread.call(task, timeouts);
      const answers = a.answers as WorkerAnswer[];
      const missing = answers.length === 1 && 'missing' in answers[0]! ? answers[0].missing : undefined;
      if (missing && attempt < 2) {
        for (const key of missing) {
          const load = this.loads.get(key);
          if (load) await thread.load(load);
        }
        continue;
      }
      if (missing) return { results: [], stopped: { member: 0, timeout: false, message: `plugins ${missing.join(', ')} are not loaded in the worker thread` } };
      const results: MemberResult[] = [];
      for (const r of answers) {
        if ('fault' in r) return { results, stopped: { member: results.length ? results.at(-1)!.i + 1 : 0, timeout: false, message: r.fault } };
        results.push(r as MemberResult);
      }
      return a.stopped ? { results, stopped: a.stopped } : { results };
    }
  }

  /** Finished requests' on-log calls per thread, sent together once per event-loop turn. */
  private readonly logQueues = new Map<number, WorkerLogBatch['items'][number][]>();

  /** Queues an on-log call; one call per thread carries every queued one. */
  log(i: number, item: WorkerLogBatch['items'][number], timeoutMs: number, onError: (err: unknown) => void): void {
    let q = this.logQueues.get(i);
    if (q) {
      q.push(item);
      return;
    }
    this.logQueues.set(i, (q = [item]));
    this.start();
    setImmediate(() => {
      this.logQueues.delete(i);
      const batch: WorkerLogBatch = { op: 'log-batch', items: q };
      // The batch's deadline grows with its size: each call has the members' own budget.
      void this.threads[i]!.call(batch, [timeoutMs * q.length]).then((a) => {
        if (a.stopped) onError(new Error(a.stopped.message));
      });
    });
  }

  /**
   * Stops (a reload dropped the pool's plugins or left them unused) or restarts the on-tick
   * timers of the pool's plugins in every thread; a thread started later gets loads that
   * tick or not to match.
   */
  setTicks(on: boolean): void {
    if (this.ticking === on) return;
    this.ticking = on;
    for (const l of this.loads.values()) l.ticks = on;
    const msg: WorkerTicks = { ticks: on };
    this.cancels?.postMessage(msg);
  }

  /** The client of `requestId` left while a call of it runs: its threads give the call up. */
  cancel(requestId: string): void {
    this.cancels?.postMessage(requestId);
  }

  async close(): Promise<void> {
    await Promise.all(this.threads.map((t) => t.close()));
    this.logs?.close();
    this.cancels?.close();
  }
}

/** Writes a worker thread's log line through the proxy's logger. */
function relayLog(logger: Logger, line: WorkerLogLine): void {
  const fn = logger[line.level] as ((obj: object, msg: string) => void) | undefined;
  fn?.call(logger, { ...line.fields, thread: 'plugin-worker' }, line.msg);
}

/** A worker plugin as one member of a chain (merged with its neighbours by `combineWorkerPhases`). */
export interface WorkerMemberPhase extends Phase {
  readonly worker: { readonly filter: FilterConfig; readonly plugin: WasmPlugin; readonly key: string; readonly pool: WorkerPool };
}

export function workerMemberPhase(filter: FilterConfig, plugin: WasmPlugin, key: string, pool: WorkerPool, logger: Logger): WorkerMemberPhase {
  const base = { name: filter.name, kind: `wasm-worker:${plugin.name}`, failureMode: filter.failureMode, requestBody: NO_BODY, responseBody: NO_BODY, worker: { filter, plugin, key, pool } };
  // A lone member is a composite of one (its pool starts when a chain uses it).
  return Object.assign(composite([base as WorkerMemberPhase], logger), { worker: base.worker });
}

export function isWorkerMember(p: Phase): p is WorkerMemberPhase {
  return (p as Partial<WorkerMemberPhase>).worker !== undefined;
}

/**
 * Merges runs of consecutive worker members into composite phases: one round trip per
 * phase for the whole run. `poolFor` gives the threads a run shares (a member alone keeps
 * its own pool); resolves once they are up with every member loaded, so a snapshot serves
 * only when its threads are ready (and their start-up does not compete with requests).
 */
export async function combineWorkerPhases(phases: readonly Phase[], logger: Logger, poolFor: (run: readonly WorkerMemberPhase[]) => WorkerPool = (run) => run[0]!.worker.pool): Promise<Phase[]> {
  const out: Phase[] = [];
  let run: WorkerMemberPhase[] = [];
  const ready: Array<Promise<void>> = [];
  const flush = (): void => {
    if (run.length === 0) return;
    const pool = poolFor(run);
    ready.push(pool.ready());
    out.push(run.length === 1 && pool === run[0]!.worker.pool ? run[0]! : composite(run, logger, pool));
    run = [];
  };
  for (const p of phases) {
    if (isWorkerMember(p)) run.push(p);
    else {
      flush();
      out.push(p);
    }
  }
  flush();
  await Promise.all(ready);
  return out;
}

function bodyMode(m: W.BodyMode): BodyMode {
  if (m.tag === 'buffered') return { mode: 'buffered', limit: m.val };
  if (m.tag === 'streamed') return { mode: 'stream' };
  return NO_BODY;
}

function composite(members: WorkerMemberPhase[], logger: Logger, pool: WorkerPool = members[0]!.worker.pool): Phase {
  const wire = (m: WorkerMemberPhase): WorkerMember => ({ key: m.worker.key, config: m.worker.plugin.config as PluginConfig, failureMode: m.failureMode });
  const byHook = (hook: HookName): WorkerMemberPhase[] => members.filter((m) => m.worker.plugin.version.hooks.has(hook));
  const timeoutOf = (list: WorkerMemberPhase[]): number => Math.min(...list.map((m) => m.worker.plugin.config.timeoutMs));
  const firstBody = (key: 'requestBody' | 'responseBody'): BodyMode => {
    for (const m of members) {
      const v = m.worker.plugin.version;
      if (v.hooks.has(key === 'requestBody' ? 'on-request-body' : 'on-response-body')) return bodyMode(v.info[key]);
    }
    return NO_BODY;
  };
  const phase: Phase = {
    name: members.map((m) => m.name).join('+'),
    kind: `wasm-worker:${members.map((m) => m.worker.plugin.name).join('+')}`,
    failureMode: members.some((m) => m.failureMode === 'closed') ? 'closed' : 'open',
    requestBody: firstBody('requestBody'),
    responseBody: firstBody('responseBody'),
  };

  const thread = (ctx: RequestContext): number => {
    let i = ctx.filterState.get(phase) as number | undefined;
    if (i === undefined) {
      i = pool.pick();
      ctx.filterState.set(phase, i);
    }
    return i;
  };

  /** Requests with a task out (their ids). */
  const inflight = new Set<string>();

  const failed = (m: WorkerMemberPhase, r: MemberResult, hook: string, ctx: RequestContext): void => {
    const werr = new WeirError(r.error!.code as ErrorCode, r.error!.message);
    logger.warn({ filter: m.name, hook, code: werr.code, err: werr.message, requestId: ctx.id, failureMode: m.failureMode }, 'worker plugin failed');
    if (m.failureMode === 'closed') throw werr;
  };

  /**
   * Runs `list` for `hook` in one round trip. `each` sees every member's answer in order
   * and returns a value to end the phase. A member stopped by its thread going (deadline,
   * crash) is blamed alone and its failure mode applies: `open` sends the members after it
   * again, on the replacement thread, with the head as the members before it left it.
   */
  const drive = async <T>(ctx: RequestContext, hook: HookName, list: WorkerMemberPhase[], extra: () => Partial<WorkerTask>, each: (m: WorkerMemberPhase, r: MemberResult) => T | undefined): Promise<T | undefined> => {
    let rest = list;
    while (rest.length) {
      const task: WorkerTask = { hook, requestId: ctx.id, members: rest.map(wire), ...extra(), ...(ctx.trace?.sampled ? { traced: true } : {}) };
      inflight.add(ctx.id);
      let out;
      try {
        out = await pool.call(thread(ctx), task, rest.map((m) => m.worker.plugin.config.timeoutMs));
      } finally {
        inflight.delete(ctx.id);
      }
      for (const r of out.results) {
        const m = rest[r.i]!;
        if (r.trace !== undefined && ctx.trace !== undefined) replayTrace(ctx.trace, r.trace);
        if (r.error) {
          failed(m, r, hook, ctx);
          continue;
        }
        const v = each(m, r);
        if (v !== undefined) return v;
      }
      if (!out.stopped) return undefined;
      const at = Math.min(out.stopped.member, rest.length - 1);
      const m = rest[at]!;
      const code: ErrorCode = out.stopped.timeout ? 'WEIR_ERR_PLUGIN_TIMEOUT' : 'WEIR_ERR_PLUGIN_TRAP';
      const werr = new WeirError(code, `plugin ${m.worker.plugin.name} in ${hook}: ${out.stopped.message}`);
      logger.warn({ filter: m.name, hook, code, err: werr.message, requestId: ctx.id, failureMode: m.failureMode }, 'worker plugin failed');
      if (m.failureMode === 'closed') throw werr;
      rest = rest.slice(at + 1);
    }
    return undefined;
  };

  const headers = (hook: 'on-request-headers' | 'on-response-headers', target: 'request' | 'response') => {
    const list = byHook(hook);
    if (list.length === 0) return undefined;
    return async (ctx: RequestContext): Promise<HeadersResult> => {
      const extra = (): Partial<WorkerTask> => (target === 'request' ? { head: wireRequestHead(ctx) } : { head: wireRequestHead(ctx), response: wireResponseHead(ctx) });
      return drive(ctx, hook, list, extra, (m, r) => applyDecision(m.worker.plugin.name, ctx, target, r.decision!));
    };
  };

  const body = (hook: 'on-request-body' | 'on-response-body') => {
    const list = byHook(hook);
    if (list.length === 0) return undefined;
    return async (ctx: RequestContext, chunk: BodyChunk): Promise<BodyResult> => {
      let out: BodyResult = undefined;
      const reply = await drive(ctx, hook, list, () => ({ chunk: (out as Uint8Array | undefined) ?? chunk.data, end: chunk.end }), (m, r) => {
        const d = r.body!;
        if (d.tag === 'respond') return localReply(m.worker.plugin.name, d.val);
        if (d.tag === 'replace') out = d.val;
        return undefined;
      });
      return reply ?? out;
    };
  };

  phase.onRequestHeaders = headers('on-request-headers', 'request');
  phase.onResponseHeaders = headers('on-response-headers', 'response');
  phase.onRequestBody = body('on-request-body');
  phase.onResponseBody = body('on-response-body');
  const sel = byHook('select-upstream');
  if (sel.length) {
    phase.selectUpstream = async (ctx: RequestContext, list: readonly TargetStats[]) => {
      const info: W.UpstreamInfo = upstreamInfo(ctx, process.env['WEIR_ZONE'] ?? '');
      return drive(ctx, 'select-upstream', sel, () => ({ head: wireRequestHead(ctx), upstream: info, targets: targets(list) }), (_m, r) => r.index);
    };
  }
  for (const k of ['onRequestHeaders', 'onResponseHeaders', 'onRequestBody', 'onResponseBody'] as const) if (phase[k] === undefined) delete phase[k];
  // Always: releases the request's state in the worker. Batched: on-log answers nothing.
  const logMembers = members.map(wire);
  phase.onLog = (ctx: RequestContext) => {
    const i = ctx.filterState.get(phase) as number | undefined;
    if (i === undefined) return;
    ctx.filterState.delete(phase);
    // A task still out means the request ended under it (client gone): give its call up.
    if (inflight.has(ctx.id)) pool.cancel(ctx.id);
    pool.log(i, { requestId: ctx.id, members: logMembers, summary: logSummary(ctx) }, timeoutOf(members), (err) =>
      logger.warn({ plugins: phase.name, hook: 'on-log', err: (err as Error).message }, 'worker plugin on-log batch failed'));
  };
  return phase;
}
