/**
 * Test helpers that call a hook with a given request (and response) head: since ABI 0.2 a
 * hook receives only its context id and reads the head through the `exchange` host
 * functions, so the head is handed to the instance's host first.
 */
import { callOnRequestHeaders, callOnResponseHeaders, callSelectUpstream, type CoreInstance } from '../../plugin-abi/generated/codec.ts';
import type * as W from '../../plugin-abi/generated/types.ts';
import type { WireRequestHead, WireResponseHead } from '../../plugin-abi/src/runtime/exchange.ts';

export type { WireRequestHead as RequestHead, WireResponseHead as ResponseHead };

interface ExchangeHost {
  setExchange(head: WireRequestHead | undefined, response?: WireResponseHead): void;
}

const hosts = new WeakMap<CoreInstance, ExchangeHost>();

/** Remembers which host serves `inst` (call where the instance is made). */
export function withHost<T extends CoreInstance>(inst: T, host: ExchangeHost): T {
  hosts.set(inst, host);
  return inst;
}

function hostOf(inst: CoreInstance): ExchangeHost {
  const h = hosts.get(inst);
  if (!h) throw new Error('instance made without withHost()');
  return h;
}

export function onRequestHeaders(inst: CoreInstance, ctx: bigint, head: WireRequestHead): W.Decision {
  hostOf(inst).setExchange(head);
  return callOnRequestHeaders(inst, ctx);
}

export function selectUpstream(inst: CoreInstance, ctx: bigint, head: WireRequestHead, upstream: W.UpstreamInfo, targets: W.Target[]): number | undefined {
  hostOf(inst).setExchange(head);
  return callSelectUpstream(inst, ctx, upstream, targets);
}

export function onResponseHeaders(inst: CoreInstance, ctx: bigint, head: WireRequestHead, response: WireResponseHead): W.Decision {
  hostOf(inst).setExchange(head, response);
  return callOnResponseHeaders(inst, ctx);
}
