/**
 * Worker-isolated plugins on the proxy thread's side. Consecutive worker plugins of a
 * route's chain become one composite Phase, so a phase costs one round trip to a worker
 * whatever the number of plugins. Each request is pinned to one worker thread (one
 * single-thread piscina pool each) for all its phases, so per-request guest state holds.
 * A task past the members' `timeout-ms` is aborted: piscina terminates that thread and
 * starts a fresh one. Each isolated plugin has a pool of its own (see runtime.ts), so only
 * consecutive members of the same plugin merge. Guest logs come back over a
 * BroadcastChannel as they are written, so a call that is then killed keeps them.
 */
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { BroadcastChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { FilterConfig, PluginConfig } from '../../../host/src/config/types.ts';
import { WeirError, type ErrorCode } from '../../../host/src/errors.ts';
import type { Logger } from '../../../host/src/observability/logger.ts';
import type { BodyChunk, BodyMode, BodyResult, HeadersResult, Phase, RequestContext, TargetStats } from '../../../host/src/pipeline/phases.ts';
import { NO_BODY } from '../../../host/src/pipeline/phases.ts';
import type * as W from '../../generated/types.ts';
import { applyMutations, localReply, logSummary, requestHead, responseHead, targets, upstreamInfo } from './convert.ts';
import type { HookName } from './metrics.ts';
import type { PluginVersion, WasmPlugin } from './plugin.ts';
import type { MemberResult, WorkerLoad, WorkerLogBatch, WorkerLogLine, WorkerMember, WorkerResult, WorkerTask } from './worker-protocol.ts';
import { pluginWorkerPath } from '../../../host/src/assets.ts';

/** Resolves the worker module for piscina; the single binary extracts it next to itself. */
// pluginWorkerPath(): the extracted bundle in the binary, in every thread that builds pools.
export let workerFilename = pluginWorkerPath() ?? new URL('./worker.ts', import.meta.url).href;
export function setWorkerFilename(f: string): void {
  workerFilename = f;
}

/** Piscina refuses tasks while the terminated thread is being torn down: retry briefly. */
async function loadWithRetry(pool: Piscina, load: WorkerLoad): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await pool.run(load);
      return;
    } catch (err) {
      if (attempt >= 20) throw err;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

export class WorkerPool {
  private readonly pools: Piscina[];
  private next = 0;
  private readonly logs: BroadcastChannel;
  /** Tells the threads that a request is gone: a call of it waiting on a callout is given up. */
  private readonly cancels: BroadcastChannel;

  /**
   * `logger`: the proxy's; worker threads log at its level and their lines are written
   * through it. `storeSab`: the SharedStore memory the threads' store calls use.
   */
  constructor(threads: number, logger: Logger, storeSab?: SharedArrayBuffer) {
    const n = Math.max(1, Math.min(threads, availableParallelism()));
    const logChannel = `weir-plugin-logs-${randomUUID()}`;
    this.logs = new BroadcastChannel(logChannel);
    this.logs.onmessage = (e) => relayLog(logger, (e as { data: WorkerLogLine }).data);
    this.logs.unref();
    this.cancels = new BroadcastChannel(`${logChannel}-cancel`);
    this.cancels.unref();
    this.pools = Array.from({ length: n }, () => {
      const pool = new Piscina({ filename: workerFilename, minThreads: 1, maxThreads: 1, idleTimeout: 2 ** 31 - 1, concurrentTasksPerWorker: 1, workerData: { logLevel: logger.level, logChannel, storeSab } });
      // A worker thread failing with no task in flight is reported on the pool: not fatal.
      pool.on('error', (err: Error) => logger.error({ code: 'WEIR_ERR_INTERNAL', err: err.message }, 'plugin worker thread failed outside a request'));
      return pool;
    });
  }

  get size(): number {
    return this.pools.length;
  }

  pick(): number {
    const i = this.next;
    this.next = (i + 1) % this.pools.length;
    return i;
  }

  /** What every thread must have loaded, replayed to a thread that replaced a terminated one. */
  private readonly loads = new Map<string, WorkerLoad>();

  /** Installs a plugin version in every worker thread (no deadline: this is load time). */
  async load(key: string, config: PluginConfig, version: PluginVersion): Promise<void> {
    const task: WorkerLoad = { op: 'load', key, config, version };
    this.loads.set(key, task);
    await Promise.all(this.pools.map((p) => p.run(task)));
  }

  /** Pools whose thread was terminated: warmed up (no deadline) before their next task. */
  private readonly stale = new Set<number>();

  async run(i: number, task: WorkerTask, timeoutMs: number): Promise<WorkerResult> {
    const pool = this.pools[i]!;
    if (this.stale.has(i)) {
      // A replacement thread boots and loads its plugins outside any request's deadline.
      this.stale.delete(i);
      for (const load of this.loads.values()) await loadWithRetry(pool, load);
    }
    let res: WorkerResult;
    try {
      res = (await pool.run(task, { signal: AbortSignal.timeout(timeoutMs) })) as WorkerResult;
      if (res.missing?.length) {
        for (const key of res.missing) {
          const load = this.loads.get(key);
          if (load) await loadWithRetry(pool, load);
        }
        res = (await pool.run(task, { signal: AbortSignal.timeout(timeoutMs) })) as WorkerResult;
      }
    } catch (err) {
      this.stale.add(i);
      throw err;
    }
    return res;
  }

  /** Finished requests' on-log calls per thread, sent together once per event-loop turn. */
  private readonly logQueues = new Map<number, WorkerLogBatch['items'][number][]>();

  /** Queues an on-log call; one message per thread carries every queued call. */
  log(i: number, item: WorkerLogBatch['items'][number], timeoutMs: number, onError: (err: unknown) => void): void {
    let q = this.logQueues.get(i);
    if (q) {
      q.push(item);
      return;
    }
    this.logQueues.set(i, (q = [item]));
    setImmediate(() => {
      this.logQueues.delete(i);
      const batch: WorkerLogBatch = { op: 'log-batch', items: q };
      // The batch's deadline grows with its size: each call has the members' own budget.
      this.pools[i]!.run(batch, { signal: AbortSignal.timeout(timeoutMs * q.length) }).catch((err: unknown) => {
        this.stale.add(i);
        onError(err);
      });
    });
  }

  /** The client of `requestId` left while a task of it runs: its threads give the call up. */
  cancel(requestId: string): void {
    this.cancels.postMessage(requestId);
  }

  async close(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.destroy()));
    this.logs.close();
    this.cancels.close();
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
  // A lone member is a composite of one.
  return Object.assign(composite([base as WorkerMemberPhase], logger), { worker: base.worker });
}

export function isWorkerMember(p: Phase): p is WorkerMemberPhase {
  return (p as Partial<WorkerMemberPhase>).worker !== undefined;
}

/** Merges runs of consecutive worker members (same pool) into composite phases. */
export function combineWorkerPhases(phases: readonly Phase[], logger: Logger): Phase[] {
  const out: Phase[] = [];
  let run: WorkerMemberPhase[] = [];
  const flush = (): void => {
    if (run.length === 1) out.push(run[0]!);
    else if (run.length > 1) out.push(composite(run, logger));
    run = [];
  };
  for (const p of phases) {
    if (isWorkerMember(p) && (run.length === 0 || run[0]!.worker.pool === p.worker.pool)) run.push(p);
    else {
      flush();
      if (isWorkerMember(p)) run.push(p);
      else out.push(p);
    }
  }
  flush();
  return out;
}

function bodyMode(m: W.BodyMode): BodyMode {
  if (m.tag === 'buffered') return { mode: 'buffered', limit: m.val };
  if (m.tag === 'streamed') return { mode: 'stream' };
  return NO_BODY;
}

function composite(members: WorkerMemberPhase[], logger: Logger): Phase {
  const pool = members[0]!.worker.pool;
  const wire = (m: WorkerMemberPhase): WorkerMember => ({ key: m.worker.key, config: m.worker.plugin.config as PluginConfig, failureMode: m.failureMode });
  const byHook = (hook: HookName): WorkerMemberPhase[] => members.filter((m) => m.worker.plugin.version.hooks.has(hook));
  const timeoutOf = (list: WorkerMemberPhase[]): number => Math.min(...list.map((m) => m.worker.plugin.config.timeoutMs));
  const strictest = (list: WorkerMemberPhase[]): 'open' | 'closed' => (list.some((m) => m.failureMode === 'closed') ? 'closed' : 'open');
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
    failureMode: strictest(members),
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

  /** One round trip; a deadline or a dead worker becomes a plugin error for the whole run. */
  const send = async (ctx: RequestContext, hook: HookName, list: WorkerMemberPhase[], extra: Partial<WorkerTask>): Promise<Array<[WorkerMemberPhase, MemberResult]>> => {
    const task: WorkerTask = { hook, requestId: ctx.id, members: list.map(wire), ...extra };
    let res: WorkerResult;
    inflight.add(ctx.id);
    try {
      res = await pool.run(thread(ctx), task, timeoutOf(list));
    } catch (err) {
      const timeout = (err as Error).name === 'AbortError' || (err as Error).name === 'TimeoutError';
      const code: ErrorCode = timeout ? 'WEIR_ERR_PLUGIN_TIMEOUT' : 'WEIR_ERR_PLUGIN_TRAP';
      const werr = new WeirError(code, timeout ? `plugins ${phase.name} exceeded their ${timeoutOf(list)} ms deadline in ${hook}; the worker was replaced` : `plugin worker failed in ${hook}: ${(err as Error).message}`, { cause: err });
      logger.warn({ plugins: phase.name, hook, code, requestId: ctx.id }, werr.message);
      if (strictest(list) === 'closed' && hook !== 'on-log') throw werr;
      return [];
    } finally {
      inflight.delete(ctx.id);
    }
    return res.results.map((r) => [list.find((m) => m.worker.key === r.key)!, r]);
  };

  const failed = (m: WorkerMemberPhase, r: MemberResult, hook: string, ctx: RequestContext): void => {
    const werr = new WeirError(r.error!.code as ErrorCode, r.error!.message);
    logger.warn({ filter: m.name, hook, code: werr.code, err: werr.message, requestId: ctx.id, failureMode: m.failureMode }, 'worker plugin failed');
    if (m.failureMode === 'closed') throw werr;
  };

  const headers = (hook: 'on-request-headers' | 'on-response-headers', target: 'request' | 'response') => {
    const list = byHook(hook);
    if (list.length === 0) return undefined;
    return async (ctx: RequestContext): Promise<HeadersResult> => {
      const extra: Partial<WorkerTask> = target === 'request' ? { head: requestHead(ctx) } : { head: requestHead(ctx), response: responseHead(ctx) };
      for (const [m, r] of await send(ctx, hook, list, extra)) {
        if (r.error) {
          failed(m, r, hook, ctx);
          continue;
        }
        const d = r.decision!;
        if (d.tag === 'respond') return localReply(m.worker.plugin.name, d.val);
        if (d.tag === 'mutate') applyMutations(m.worker.plugin.name, ctx, target, d.val);
      }
      return undefined;
    };
  };

  const body = (hook: 'on-request-body' | 'on-response-body') => {
    const list = byHook(hook);
    if (list.length === 0) return undefined;
    return async (ctx: RequestContext, chunk: BodyChunk): Promise<BodyResult> => {
      let out: BodyResult = undefined;
      for (const [m, r] of await send(ctx, hook, list, { chunk: chunk.data, end: chunk.end })) {
        if (r.error) {
          failed(m, r, hook, ctx);
          continue;
        }
        const d = r.body!;
        if (d.tag === 'respond') return localReply(m.worker.plugin.name, d.val);
        if (d.tag === 'replace') out = d.val;
      }
      return out;
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
      for (const [m, r] of await send(ctx, 'select-upstream', sel, { head: requestHead(ctx), upstream: info, targets: targets(list) })) {
        if (r.error) failed(m, r, 'select-upstream', ctx);
        else if (r.index !== undefined) return r.index;
      }
      return undefined;
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
