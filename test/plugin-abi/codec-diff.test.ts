/**
 * Differential test: the same random inputs go through jco's transpiled glue (reference)
 * and through our generated codec calling the core module directly; the results and every
 * host-import call the plugin makes must be identical.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { inspect, isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import {
  callConfigure, callDescribe, callOnLog, callOnRequestBody, callOnRequestHeaders, callOnResponseBody,
  callOnResponseHeaders, callOnResponseHeadersAsync, callSelectUpstream, type CoreInstance, type HostImports,
} from '../../plugin-abi/generated/codec.ts';
import type { CalloutRequest, CalloutResponse, Result } from '../../plugin-abi/generated/types.ts';
import {
  chunk, configNodes, logSummary, requestHead, responseHead, target, u64, upstreamInfo,
} from './arbitraries.ts';
import { RecordingHost, codecEcho, jcoEcho, type JcoEcho } from './harness.ts';

const RUNS = { numRuns: Number(process.env.WEIR_FC_RUNS ?? 150) };

let ours: CoreInstance;
let ref: JcoEcho;
let oursHost: RecordingHost;
let refHost: RecordingHost;

/** Runs one call on both sides and compares results and the host calls it made. */
function same(label: string, a: () => unknown, b: () => unknown): void {
  const before1 = oursHost.calls.length;
  const before2 = refHost.calls.length;
  const x = a();
  const y = b();
  // A short message: assert's own diff of large byte arrays takes minutes.
  if (!isDeepStrictEqual(x, y)) assert.fail(`${label}: result differs:\nours ${show(x)}\njco  ${show(y)}`);
  const c1 = oursHost.calls.slice(before1);
  const c2 = refHost.calls.slice(before2);
  if (!isDeepStrictEqual(c1, c2)) assert.fail(`${label}: host calls differ:\nours ${show(c1)}\njco  ${show(c2)}`);
}

const show = (v: unknown): string => inspect(v, { depth: 6, maxArrayLength: 40, maxStringLength: 200, breakLength: Infinity });

/** jco throws an err result's payload (or a ComponentError carrying it); we return it. */
function jcoResult(fn: () => unknown): Result<unknown, unknown> {
  try {
    return { tag: 'ok', val: fn() };
  } catch (e) {
    if (e instanceof Error && 'payload' in e) return { tag: 'err', val: (e as { payload: unknown }).payload };
    if (!(e instanceof Error)) return { tag: 'err', val: e };
    throw e;
  }
}

describe('codec equals jco glue', () => {
  before(async () => {
    oursHost = new RecordingHost(true);
    refHost = new RecordingHost(true);
    ours = await codecEcho(oursHost);
    ref = await jcoEcho(refHost);
  });

  test('describe', () => {
    same('describe', () => callDescribe(ours), () => ref['describe']!());
    assert.equal(callDescribe(ours).name, 'echo');
  });

  test('configure (ok and err results, every config-value case)', () => {
    fc.assert(fc.property(configNodes, (nodes) => {
      same('configure', () => callConfigure(ours, nodes), () => jcoResult(() => ref['configure']!(nodes)));
    }), RUNS);
    const fail = [{ name: 'fail', parent: undefined, args: [], props: [] }];
    same('configure fail', () => callConfigure(ours, fail), () => jcoResult(() => ref['configure']!(fail)));
    assert.equal(callConfigure(ours, fail).tag, 'err');
    jcoResult(() => ref['configure']!(fail)); // keep both guests' state in step
  });

  test('on-request-headers (mutate and respond, host imports counter-add and geo-country)', () => {
    fc.assert(fc.property(u64, requestHead, (ctx, head) => {
      oursHost.setExchange(head);
      refHost.setExchange(head);
      same('on-request-headers', () => callOnRequestHeaders(ours, ctx), () => ref['onRequestHeaders']!(ctx));
    }), RUNS);
  });

  test('on-request-body (replace and respond, host imports kv-cas and kv-get)', () => {
    fc.assert(fc.property(u64, chunk, fc.boolean(), (ctx, data, end) => {
      same('on-request-body', () => callOnRequestBody(ours, ctx, data, end), () => ref['onRequestBody']!(ctx, data, end));
    }), RUNS);
  });

  test('select-upstream (host import token-bucket-take)', () => {
    fc.assert(fc.property(u64, requestHead, upstreamInfo, fc.array(target, { maxLength: 20 }), (ctx, head, up, targets) => {
      oursHost.setExchange(head);
      refHost.setExchange(head);
      same('select-upstream', () => callSelectUpstream(ours, ctx, up, targets), () => ref['selectUpstream']!(ctx, up, targets));
    }), RUNS);
  });

  test('on-response-headers (host import http-callout, ok and err)', () => {
    fc.assert(fc.property(u64, requestHead, responseHead, (ctx, req, resp) => {
      oursHost.setExchange(req, resp);
      refHost.setExchange(req, resp);
      same('on-response-headers', () => callOnResponseHeaders(ours, ctx), () => ref['onResponseHeaders']!(ctx));
    }), RUNS);
  });

  test('on-response-body (host imports random-u64, now-ms, monotonic-ns)', () => {
    fc.assert(fc.property(u64, chunk, fc.boolean(), (ctx, data, end) => {
      same('on-response-body', () => callOnResponseBody(ours, ctx, data, end), () => ref['onResponseBody']!(ctx, data, end));
    }), RUNS);
  });

  test('on-log (flat params incl. options; host imports log and record-metric)', () => {
    fc.assert(fc.property(u64, logSummary, (ctx, summary) => {
      same('on-log', () => callOnLog(ours, ctx, summary), () => ref['onLog']!(ctx, summary));
    }), RUNS);
  });

  test('every host import was exercised on both sides', () => {
    const names = (h: RecordingHost) => new Set(h.calls.map((c) => c[0]));
    assert.deepStrictEqual(names(oursHost), names(refHost));
    for (const n of ['log', 'defineMetric', 'recordMetric', 'counterAdd', 'tokenBucketTake', 'kvGet', 'kvCas', 'geoCountry', 'nowMs', 'monotonicNs', 'randomU64', 'httpCallout',
      'requestMethod', 'requestScheme', 'requestAuthority', 'requestPath', 'requestQuery', 'requestHeader', 'requestHeaderValues', 'requestHeaders', 'clientAddress', 'clientPort',
      'routeName', 'httpVersion', 'requestProperty', 'requestProperties', 'responseStatus', 'responseHeader', 'responseHeaderValues', 'responseHeaders']) {
      assert.ok(names(oursHost).has(n), `${n} not called`);
    }
  });
});

describe('JSPI path', () => {
  test('an async http-callout suspends the guest and gives the same result as the sync path', async () => {
    class AsyncHost extends RecordingHost {
      override httpCallout(request: CalloutRequest): Result<CalloutResponse, string> {
        return super.httpCallout(request);
      }
    }
    const syncHost = new RecordingHost();
    const asyncHost = new AsyncHost();
    const asyncImpl: HostImports = Object.assign(Object.create(asyncHost) as HostImports, {
      httpCallout: async (r: CalloutRequest) => {
        await new Promise((resolve) => setImmediate(resolve));
        return asyncHost.httpCallout(r);
      },
    });
    const a = await codecEcho(syncHost);
    const b = await codecEcho(asyncImpl, true);
    const head = await fc.sample(requestHead, { numRuns: 1, seed: 42 })[0]!;
    const resp = { status: 200, headers: [{ name: 'content-type', value: 'text/plain; charset=ütf-8' }] };
    syncHost.setExchange(head, resp);
    asyncHost.setExchange(head, resp);
    const x = callOnResponseHeaders(a, 3n);
    const y = await callOnResponseHeadersAsync(b, 3n);
    assert.deepStrictEqual(y, x);
    assert.deepStrictEqual(asyncHost.calls, syncHost.calls);
  });

  test('without JSPI an async host function is refused with a clear error', async () => {
    const host = Object.assign(Object.create(new RecordingHost()) as HostImports, { httpCallout: async () => ({ tag: 'err', val: 'x' }) });
    const inst = await codecEcho(host);
    const head = fc.sample(requestHead, { numRuns: 1, seed: 7 })[0]!;
    (Object.getPrototypeOf(host) as RecordingHost).setExchange(head, { status: 200, headers: [] });
    assert.throws(() => callOnResponseHeaders(inst, 1n), /not set up for JSPI/);
  });
});
