/**
 * Plugin mutations: random mutation lists and local replies, as an untrusted plugin could
 * return them, through the host's validation (`applyMutations`, `localReply`). Each is either
 * refused whole with WEIR_ERR_PLUGIN_INVALID_MUTATION (nothing applied), or everything it
 * applied can be sent: header names and values Node accepts, no framing or hop-by-hop header,
 * a path and query undici accepts, a token method, a status from 100 to 599.
 */
import http from 'node:http';
import fc from 'fast-check';
import { isWeirError } from '../../../host/src/errors.ts';
import type { RequestContext } from '../../../host/src/pipeline/phases.ts';
import type * as W from '../../../plugin-abi/generated/types.ts';
import { applyMutations, localReply } from '../../../plugin-abi/src/runtime/convert.ts';
import { str } from '../../plugin-abi/arbitraries.ts';
import { fromJson, toJson, type FuzzEnv, type FuzzTarget } from '../target.ts';

interface Input {
  readonly target: 'request' | 'response';
  readonly mutations: W.Mutation[];
  readonly reply: W.LocalReply;
}

const nasty = fc.constantFrom('content-length', 'Transfer-Encoding', 'host', 'connection', 'te', 'x-a', 'X-A', 'set-cookie', ':path', 'a b', 'é', '', 'x\r\ny', 'x\0', '/p\u20ac', '/p ', '/é', '/a?b', '/#', '\u2028', 'GET', 'get', '127.0.0.1:80', '[::1]:1', 'a'.repeat(9000));
const text = fc.oneof(str, nasty, fc.string({ unit: 'binary', maxLength: 20 }));
const header: fc.Arbitrary<W.Header> = fc.record({ name: text, value: text });
const mutation: fc.Arbitrary<W.Mutation> = fc.oneof(
  fc.record({ tag: fc.constant('set-header' as const), val: header }),
  fc.record({ tag: fc.constant('add-header' as const), val: header }),
  fc.record({ tag: fc.constant('remove-header' as const), val: text }),
  fc.record({ tag: fc.constant('set-path' as const), val: fc.oneof(text, text.map((t) => `/${t}`)) }),
  fc.record({ tag: fc.constant('set-query' as const), val: text }),
  fc.record({ tag: fc.constant('set-method' as const), val: text }),
  fc.record({ tag: fc.constant('set-authority' as const), val: text }),
  fc.record({ tag: fc.constant('set-status' as const), val: fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(99, 100, 599, 600)) }),
  fc.record({ tag: fc.constant('set-property' as const), val: fc.record({ key: text, value: text }) }),
  fc.record({ tag: fc.constant('remove-property' as const), val: text }),
  fc.record({ tag: fc.constant('set-upstream' as const), val: text }),
);
const input: fc.Arbitrary<Input> = fc.record({
  target: fc.constantFrom('request' as const, 'response' as const),
  mutations: fc.array(mutation, { maxLength: 12 }),
  reply: fc.record({ status: fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(100, 599)), headers: fc.array(header, { maxLength: 6 }), body: fc.uint8Array({ maxLength: 16 }) }),
});

const MANAGED = new Set(['content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer']);
/** undici's own request-path check. */
const UNDICI_PATH = /^[\u0021-\u00ff]*$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

function context(): RequestContext {
  return {
    id: 'fuzz', startTime: 0, client: { address: '127.0.0.1', port: 1 }, routeName: 'r', routePrefix: undefined,
    request: { method: 'GET', scheme: 'http', authority: 'a', path: '/', query: '', headers: { 'x-keep': 'k' }, httpVersion: '1.1' },
    response: { status: 200, headers: { 'x-keep': 'k' } },
    upstream: undefined, properties: new Map(), filterState: new Map(), error: undefined, bytesIn: 0, bytesOut: 0, attempts: 0, previousTarget: undefined, upstreamMs: undefined,
  } as unknown as RequestContext;
}

function sendable(headers: Record<string, string | string[] | undefined>, where: string, allowHost: boolean): void {
  for (const [n, v] of Object.entries(headers)) {
    if (v === undefined) continue;
    try {
      http.validateHeaderName(n);
      for (const x of Array.isArray(v) ? v : [v]) http.validateHeaderValue(n, x);
    } catch (e) {
      throw new Error(`${where}: header ${JSON.stringify(n)} cannot be sent: ${(e as Error).message}`);
    }
    if (MANAGED.has(n) || (n === 'host' && !allowHost)) throw new Error(`${where}: managed header ${n} was set`);
  }
}

export const pluginOutput: FuzzTarget<Input> = {
  name: 'plugin-output',
  description: 'mutation lists and local replies a plugin could return (every mutation kind, bad names, values, paths, statuses) through the host\'s validation',
  ext: 'json',
  setup: async (): Promise<FuzzEnv> => {
    const gc = (globalThis as { gc?: () => void }).gc;
    return { alive: async () => {}, memory: () => (gc?.(), process.memoryUsage().heapUsed), close: async () => {} };
  },
  arbitrary: input,
  check: async (_env, i) => {
    const ctx = context();
    const before = JSON.stringify([ctx.request, ctx.response]);
    try {
      applyMutations('fuzz', ctx, i.target, i.mutations);
      sendable(ctx.request.headers, 'request', true);
      sendable(ctx.response!.headers, 'response', false);
      const r = ctx.request;
      if (!r.path.startsWith('/') || !UNDICI_PATH.test(r.query === '' ? r.path : `${r.path}?${r.query}`)) throw new Error(`request path ${JSON.stringify(r.path)} query ${JSON.stringify(r.query)} cannot be sent`);
      if (!TOKEN.test(r.method)) throw new Error(`method ${JSON.stringify(r.method)} is not a token`);
      const s = ctx.response!.status;
      if (!Number.isInteger(s) || s < 100 || s > 599) throw new Error(`status ${s}`);
    } catch (e) {
      if (!isWeirError(e)) throw e;
      if (e.code !== 'WEIR_ERR_PLUGIN_INVALID_MUTATION') throw new Error(`refused with ${e.code}`);
      if (JSON.stringify([ctx.request, ctx.response]) !== before) throw new Error('a refused batch changed the request or response');
    }
    try {
      const reply = localReply('fuzz', i.reply);
      sendable(reply.headers as Record<string, string>, 'local reply', false);
      if (reply.status < 100 || reply.status > 599) throw new Error(`local reply status ${reply.status}`);
    } catch (e) {
      if (!isWeirError(e)) throw e;
      if (e.code !== 'WEIR_ERR_PLUGIN_INVALID_MUTATION') throw new Error(`local reply refused with ${e.code}`);
    }
  },
  encode: toJson,
  decode: (b) => fromJson<Input>(b),
};
