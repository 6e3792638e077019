/**
 * Runs a route's filter chain for one phase. One generic runner per hook shape (header
 * hooks, body hooks, select-upstream, log), as fastify does: it stays synchronous while
 * every hook returns a plain value and only goes async at the first promise.
 */
import { WeirError, isWeirError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { BodyChunk, BodyResult, HeadersResult, LocalReply, Phase, RequestContext, TargetStats } from './phases.ts';
import { PHASES } from './phases.ts';

/** A route's filters, pre-split per hook so the hot path never looks at filters that don't implement it. */
export interface Chain {
  readonly phases: readonly Phase[];
  readonly onRequestHeaders: readonly Phase[];
  readonly onRequestBody: readonly Phase[];
  readonly selectUpstream: readonly Phase[];
  /** Response hooks: already in reverse order. */
  readonly onResponseHeaders: readonly Phase[];
  readonly onResponseBody: readonly Phase[];
  readonly onLog: readonly Phase[];
  /** Smallest buffered-mode limit among request-body filters, or undefined if all stream. */
  readonly requestBufferLimit: number | undefined;
  readonly responseBufferLimit: number | undefined;
  /** Every response body hook passes the bytes on unchanged (`keepsResponseLength`): the origin's length stays. */
  readonly responseKeepsLength: boolean;
}

export function buildChain(phases: readonly Phase[]): Chain {
  const by = (method: (typeof PHASES)[number]['method'], order: 'forward' | 'reverse'): Phase[] => {
    const list = phases.filter((p) => typeof p[method] === 'function');
    return order === 'reverse' ? list.reverse() : list;
  };
  const hooks = Object.fromEntries(PHASES.map((s) => [s.method, by(s.method, s.order)])) as Record<(typeof PHASES)[number]['method'], Phase[]>;
  const minLimit = (list: Phase[], key: 'requestBody' | 'responseBody'): number | undefined => {
    let limit: number | undefined;
    for (const p of list) {
      const m = p[key];
      if (m.mode === 'buffered') limit = limit === undefined ? m.limit : Math.min(limit, m.limit);
    }
    return limit;
  };
  return {
    phases,
    ...hooks,
    requestBufferLimit: minLimit(hooks.onRequestBody, 'requestBody'),
    responseBufferLimit: minLimit(hooks.onResponseBody, 'responseBody'),
    responseKeepsLength: hooks.onResponseBody.every((p) => p.keepsResponseLength === true),
  };
}

export function isPromise<T>(v: unknown): v is Promise<T> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * A hook threw or rejected. failure-mode "open": log and skip the filter; "closed": the
 * request fails with the plugin's own error code (or WEIR_ERR_FILTER_FAILED).
 */
export function filterFailed(phase: Phase, hook: string, err: unknown, ctx: RequestContext, logger: Logger): void {
  const werr = isWeirError(err) ? err : new WeirError('WEIR_ERR_FILTER_FAILED', `filter ${phase.name} failed in ${hook}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
  logger.warn({ filter: phase.name, kind: phase.kind, hook, code: werr.code, err: werr.message, requestId: ctx.id, failureMode: phase.failureMode }, 'filter failed');
  if (phase.failureMode === 'closed') throw werr;
}

type HeaderHook = 'onRequestHeaders' | 'onResponseHeaders';

export function runHeaderHooks(list: readonly Phase[], hook: HeaderHook, ctx: RequestContext, logger: Logger, start = 0): HeadersResult | Promise<HeadersResult> {
  for (let i = start; i < list.length; i++) {
    const p = list[i]!;
    let r: HeadersResult | Promise<HeadersResult>;
    try {
      r = p[hook]!(ctx);
    } catch (err) {
      filterFailed(p, hook, err, ctx, logger);
      continue;
    }
    if (r === undefined) continue;
    if (isPromise<HeadersResult>(r)) {
      return r.then(
        (v) => (v !== undefined ? v : runHeaderHooks(list, hook, ctx, logger, i + 1)),
        (err) => {
          filterFailed(p, hook, err, ctx, logger);
          return runHeaderHooks(list, hook, ctx, logger, i + 1);
        },
      );
    }
    return r;
  }
  return undefined;
}

type BodyHook = 'onRequestBody' | 'onResponseBody';

/** Passes a chunk through every body hook; resolves to the final bytes or a local reply. */
export async function runBodyHooks(list: readonly Phase[], hook: BodyHook, ctx: RequestContext, chunk: BodyChunk, logger: Logger): Promise<Uint8Array | LocalReply> {
  let data = chunk.data;
  for (const p of list) {
    let r: BodyResult;
    try {
      r = await p[hook]!(ctx, { data, end: chunk.end });
    } catch (err) {
      filterFailed(p, hook, err, ctx, logger);
      continue;
    }
    if (r === undefined) continue;
    if (r instanceof Uint8Array) data = r;
    else return r;
  }
  return data;
}

/** First filter returning an index wins; undefined = let the upstream's algorithm pick. */
export function runSelectUpstream(list: readonly Phase[], ctx: RequestContext, targets: readonly TargetStats[], logger: Logger, start = 0): number | undefined | Promise<number | undefined> {
  for (let i = start; i < list.length; i++) {
    const p = list[i]!;
    let r: number | undefined | Promise<number | undefined>;
    try {
      r = p.selectUpstream!(ctx, targets);
    } catch (err) {
      filterFailed(p, 'selectUpstream', err, ctx, logger);
      continue;
    }
    if (r === undefined) continue;
    if (isPromise<number | undefined>(r)) {
      return r.then(
        (v) => (v !== undefined ? checkIndex(p, v, targets) : runSelectUpstream(list, ctx, targets, logger, i + 1)),
        (err) => {
          filterFailed(p, 'selectUpstream', err, ctx, logger);
          return runSelectUpstream(list, ctx, targets, logger, i + 1);
        },
      );
    }
    return checkIndex(p, r, targets);
  }
  return undefined;
}

function checkIndex(p: Phase, i: number, targets: readonly TargetStats[]): number {
  if (!Number.isInteger(i) || i < 0 || i >= targets.length) {
    throw new WeirError('WEIR_ERR_PLUGIN_INVALID_MUTATION', `filter ${p.name} chose target ${i} of ${targets.length}`);
  }
  return i;
}

/** on-log never fails the request: errors are logged and swallowed. */
export function runLogHooks(list: readonly Phase[], ctx: RequestContext, logger: Logger): void {
  for (const p of list) {
    try {
      const r = p.onLog!(ctx);
      if (isPromise(r)) r.catch((err: unknown) => logger.warn({ filter: p.name, err: (err as Error)?.message }, 'on-log failed'));
    } catch (err) {
      logger.warn({ filter: p.name, err: (err as Error)?.message }, 'on-log failed');
    }
  }
}
