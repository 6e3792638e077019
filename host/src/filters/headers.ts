/**
 * `type "headers"`: set / add / remove request and response headers.
 *   request  { set "x-a" "1"; add "x-b" "2"; remove "x-c" }
 *   response { set "x-served-by" "weir"; remove "server" }
 * Operations run in the order written.
 */
import type { ConfigNode, FilterConfig } from '../config/types.ts';
import type { HeaderMap, Phase, RequestContext } from '../pipeline/phases.ts';
import { NO_BODY } from '../pipeline/phases.ts';
import { child } from './settings.ts';

type Op = { readonly op: 'set' | 'add' | 'remove'; readonly name: string; readonly value: string };

function ops(block: ConfigNode | undefined): Op[] {
  if (!block) return [];
  return block.children.flatMap((c): Op[] =>
    // `remove "a" "b"` removes every header it names.
    c.name === 'remove' && c.args.length > 1
      ? c.args.map((a) => ({ op: 'remove', name: String(a).toLowerCase(), value: '' }))
      : [{ op: c.name as Op['op'], name: String(c.args[0] ?? c.props['name']).toLowerCase(), value: String(c.args[1] ?? c.props['value'] ?? '') }],
  );
}

export function applyHeaderOps(headers: HeaderMap, list: readonly Op[]): void {
  for (const o of list) {
    if (o.op === 'set') headers[o.name] = o.value;
    else if (o.op === 'remove') delete headers[o.name];
    else {
      const prev = headers[o.name];
      headers[o.name] = prev === undefined ? o.value : Array.isArray(prev) ? [...prev, o.value] : [prev, o.value];
    }
  }
}

export function headersFilter(cfg: FilterConfig): Phase {
  const reqOps = ops(child(cfg.settings, 'request'));
  const resOps = ops(child(cfg.settings, 'response'));
  const phase: Phase = {
    name: cfg.name,
    kind: 'builtin:headers',
    failureMode: cfg.failureMode,
    requestBody: NO_BODY,
    responseBody: NO_BODY,
  };
  if (reqOps.length) phase.onRequestHeaders = (ctx: RequestContext) => applyHeaderOps(ctx.request.headers, reqOps);
  if (resOps.length) phase.onResponseHeaders = (ctx: RequestContext) => {
    if (ctx.response) applyHeaderOps(ctx.response.headers, resOps);
  };
  return phase;
}
