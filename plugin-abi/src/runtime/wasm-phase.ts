/**
 * A WASM plugin as a `Phase`: the pipeline calls it like any built-in filter. Each hook
 * passes only the context id (the guest reads the head through the `exchange` host
 * functions, exchange.ts) and applies the returned decision; only the hooks the
 * plugin's `describe` lists are defined, so the chain never calls an empty hook.
 */
import type { FilterConfig } from '../../../host/src/config/types.ts';
import type { BodyChunk, BodyMode, BodyResult, HeadersResult, Phase, RequestContext, TargetStats } from '../../../host/src/pipeline/phases.ts';
import { NO_BODY } from '../../../host/src/pipeline/phases.ts';
import {
  callOnLog, callOnLogAsync, callOnRequestBody, callOnRequestBodyAsync, callOnRequestHeaders, callOnRequestHeadersAsync,
  callOnResponseBody, callOnResponseBodyAsync, callOnResponseHeaders, callOnResponseHeadersAsync, callSelectUpstream, callSelectUpstreamAsync,
} from '../../generated/codec.ts';
import type * as W from '../../generated/types.ts';
import { applyDecision, localReply, logSummary, targets, upstreamInfo } from './convert.ts';
import type { Hold, WasmPlugin } from './plugin.ts';

function bodyMode(m: W.BodyMode): BodyMode {
  if (m.tag === 'buffered') return { mode: 'buffered', limit: m.val };
  if (m.tag === 'streamed') return { mode: 'stream' };
  return NO_BODY;
}

export function wasmPhase(filter: FilterConfig, plugin: WasmPlugin): Phase {
  const v = plugin.version;
  const hooks = v.hooks;
  const name = plugin.name;
  const phase: Phase = {
    name: filter.name,
    kind: `wasm:${name}`,
    failureMode: filter.failureMode,
    requestBody: hooks.has('on-request-body') ? bodyMode(v.info.requestBody) : NO_BODY,
    responseBody: hooks.has('on-response-body') ? bodyMode(v.info.responseBody) : NO_BODY,
  };

  const hold = (ctx: RequestContext): Hold => {
    let h = ctx.filterState.get(phase) as Hold | undefined;
    if (h === undefined) {
      h = plugin.begin();
      ctx.filterState.set(phase, h);
    }
    return h;
  };

  const decide = (ctx: RequestContext, target: 'request' | 'response', d: W.Decision): HeadersResult => {
    if (d.tag === 'continue') return undefined;
    try {
      return applyDecision(name, ctx, target, d);
    } catch (err) {
      plugin.refused(target === 'request' ? 'on-request-headers' : 'on-response-headers');
      throw err;
    }
  };

  const body = (d: W.BodyDecision): BodyResult => {
    if (d.tag === 'continue') return undefined;
    if (d.tag === 'replace') return d.val;
    return localReply(name, d.val);
  };

  const jspi = v.jspi;
  if (hooks.has('on-request-headers')) {
    phase.onRequestHeaders = jspi
      ? async (ctx) => decide(ctx, 'request', await plugin.callAsync(hold(ctx), ctx, 'on-request-headers', callOnRequestHeadersAsync))
      : (ctx) => decide(ctx, 'request', plugin.call(hold(ctx), ctx, 'on-request-headers', callOnRequestHeaders));
  }
  if (hooks.has('on-request-body')) {
    phase.onRequestBody = jspi
      ? async (ctx, chunk: BodyChunk) => body(await plugin.callAsync(hold(ctx), ctx, 'on-request-body', (c, id) => callOnRequestBodyAsync(c, id, chunk.data, chunk.end)))
      : (ctx, chunk: BodyChunk) => body(plugin.call(hold(ctx), ctx, 'on-request-body', (c, id) => callOnRequestBody(c, id, chunk.data, chunk.end)));
  }
  if (hooks.has('select-upstream')) {
    // Read once: process.env is a slow getter.
    const localZone = process.env['WEIR_ZONE'] ?? '';
    const info = (ctx: RequestContext): W.UpstreamInfo => upstreamInfo(ctx, localZone);
    phase.selectUpstream = jspi
      ? (ctx, list: readonly TargetStats[]) => plugin.callAsync(hold(ctx), ctx, 'select-upstream', (c, id) => callSelectUpstreamAsync(c, id, info(ctx), targets(list)))
      : (ctx, list: readonly TargetStats[]) => plugin.call(hold(ctx), ctx, 'select-upstream', (c, id) => callSelectUpstream(c, id, info(ctx), targets(list)));
  }
  if (hooks.has('on-response-headers')) {
    phase.onResponseHeaders = jspi
      ? async (ctx) => decide(ctx, 'response', await plugin.callAsync(hold(ctx), ctx, 'on-response-headers', callOnResponseHeadersAsync))
      : (ctx) => decide(ctx, 'response', plugin.call(hold(ctx), ctx, 'on-response-headers', callOnResponseHeaders));
  }
  if (hooks.has('on-response-body')) {
    phase.onResponseBody = jspi
      ? async (ctx, chunk: BodyChunk) => body(await plugin.callAsync(hold(ctx), ctx, 'on-response-body', (c, id) => callOnResponseBodyAsync(c, id, chunk.data, chunk.end)))
      : (ctx, chunk: BodyChunk) => body(plugin.call(hold(ctx), ctx, 'on-response-body', (c, id) => callOnResponseBody(c, id, chunk.data, chunk.end)));
  }
  // Always defined: the request's hold is released here even if the guest has no on-log.
  const wantsLog = hooks.has('on-log');
  phase.onLog = (ctx) => {
    const h = ctx.filterState.get(phase) as Hold | undefined;
    if (h === undefined) return;
    ctx.filterState.delete(phase);
    const release = (): void => plugin.end(h);
    // A call still in flight means the request ended under it (client gone): releasing gives
    // the call up and discards the instance, so there is no on-log to run on it.
    if (!wantsLog || h.inst.dead || plugin.busy(h)) return release();
    const summary = logSummary(ctx);
    if (jspi) return plugin.callAsync(h, ctx, 'on-log', (c, id) => callOnLogAsync(c, id, summary)).finally(release);
    try {
      plugin.call(h, ctx, 'on-log', (c, id) => callOnLog(c, id, summary));
    } finally {
      release();
    }
  };
  return phase;
}
