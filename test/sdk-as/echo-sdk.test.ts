/**
 * The echo-sdk fixture (test/fixtures/as/echo-sdk), written with the AssemblyScript SDK, built
 * by `weir plugin build`, loaded like the proxy loads it and called through the generated
 * codec: every hook, every host function, config errors, non-ASCII and large values.
 */
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  callConfigure, callDescribe, callOnLog, callOnRequestBody, callOnResponseBody,
} from '../../plugin-abi/generated/codec.ts';
import type { ConfigNode, ConfigValue, Mutation, Target } from '../../plugin-abi/generated/types.ts';
import type { LoadedComponent } from '../../plugin-abi/src/loader/load-component.ts';
import { buildOnce, ECHO_SDK_DIR, instantiate, RecordingHost, type Running } from './helpers.ts';
import { onRequestHeaders, selectUpstream, onResponseHeaders, type RequestHead } from '../plugin-abi/with-head.ts';

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (val: string): ConfigValue => ({ tag: 'text', val });
const int = (val: number): ConfigValue => ({ tag: 'integer', val: BigInt(val) });
const node = (name: string, args: ConfigValue[] = [], parent?: number, props: ConfigNode['props'] = []): ConfigNode => ({ name, parent, args, props });

function head(over: Partial<RequestHead> = {}): RequestHead {
  return {
    method: 'GET', scheme: 'https', authority: 'api.test', path: '/x', query: '', headers: [],
    clientAddress: '10.0.0.1', clientPort: 4242, routeName: 'main', properties: [], httpVersion: '1.1', ...over,
  };
}

const setH = (name: string, value: string): Mutation => ({ tag: 'set-header', val: { name, value } });
const addH = (name: string, value: string): Mutation => ({ tag: 'add-header', val: { name, value } });

let loaded: LoadedComponent;

/** A configured instance (empty config unless given). */
async function fresh(config: ConfigNode[] = [], host = new RecordingHost()): Promise<Running> {
  const r = await instantiate(loaded, host);
  assert.deepEqual(callConfigure(r.inst, config), { tag: 'ok', val: undefined });
  r.host.calls.length = 0;
  return r;
}

before(async () => {
  ({ loaded } = await buildOnce(ECHO_SDK_DIR));
});

describe('echo-sdk: describe and configure', () => {
  test('describe reports name, version, hooks, body modes and schema', async () => {
    const { inst } = await instantiate(loaded);
    assert.deepEqual(callDescribe(inst), {
      name: 'echo-sdk', version: '1.2.3',
      hooks: ['on-request-headers', 'on-request-body', 'select-upstream', 'on-response-headers', 'on-response-body', 'on-log'],
      requestBody: { tag: 'streamed' }, responseBody: { tag: 'buffered', val: 1048576 }, configSchema: '{"type":"object"}',
    });
  });

  test('configure reads typed values and child nodes, defines its metric and logs', async () => {
    const { inst, host } = await instantiate(loaded);
    const config = [
      node('prefix', [text('x-ü-')]), node('limit', [int(3)]), node('verbose', [{ tag: 'boolean', val: true }]),
      node('ratio', [{ tag: 'float', val: 0.25 }]),
      node('header', [text('x-extra')], undefined, [{ name: 'value', value: text('v1 — ok') }]),
      node('header', [text('x-extra2')]),
      node('group'), node('header', [text('x-nested')], 6),
    ];
    assert.deepEqual(callConfigure(inst, config), { tag: 'ok', val: undefined });
    assert.deepEqual(host.calls, [
      ['defineMetric', 'echo_requests', 'counter', 'requests seen', ['route']],
      ['log', 'info', 'configured prefix=x-ü- limit=3 verbose=true ratio=0.25 headers=2'],
    ]);
    host.calls.length = 0;
    const d = onRequestHeaders(inst, 1n, head());
    assert.equal(d.tag, 'mutate');
    const muts = d.tag === 'mutate' ? d.val : [];
    assert.deepEqual(muts.filter((m) => m.tag === 'add-header' && m.val.name.startsWith('x-extra')), [addH('x-extra', 'v1 — ok'), addH('x-extra2', '-')]);
  });

  const refused: [string, ConfigNode[], string, number | undefined][] = [
    ['a value of the wrong type', [node('prefix', [text('p')]), node('limit', [text('abc')])], '`limit` must be an integer, not a string', 1],
    ['a node without its value', [node('prefix')], '`prefix` needs a value', 0],
    ['an error returned by configure', [node('fail'), node('reason', [text('because ✓')], 0)], 'told to fail: because ✓', 0],
    ['an error recorded on a node', [node('verbose', [{ tag: 'boolean', val: false }]), node('limit', [int(-1)])], 'limit must be at least 0', 1],
    ['a bad child node', [node('header', [int(7)])], 'header needs a name', 0],
    ['a wrong boolean', [node('verbose', [{ tag: 'null' }])], '`verbose` must be a boolean, not null', 0],
  ];
  for (const [what, config, message, at] of refused) {
    test(`configure refuses ${what}`, async () => {
      const { inst } = await instantiate(loaded);
      assert.deepEqual(callConfigure(inst, config), { tag: 'err', val: { message, node: at } });
    });
  }
});

describe('echo-sdk: on-request-headers', () => {
  test('mutations from the request view, and every host function in order', async () => {
    const { inst, host } = await fresh();
    const d = onRequestHeaders(inst, 7n, head({
      query: 'path=/new&z=1',
      headers: [
        { name: 'accept', value: '*/*' }, { name: 'x-name', value: 'Ünïcødé ✓ 😀' },
        { name: 'x-remove-me', value: '1' }, { name: 'x-method', value: 'PUT' },
      ],
      properties: [{ key: 'echo.old', value: 'x' }],
    }));
    const random = BigInt.asUintN(64, 0x9e3779b97f4a7c15n * 2n);
    assert.deepEqual(d, {
      tag: 'mutate', val: [
        setH('x-echo-accept', '*/*'), setH('x-echo-x-name', 'Ünïcødé ✓ 😀'), setH('x-echo-x-remove-me', '1'), setH('x-echo-x-method', 'PUT'),
        addH('x-count', '1'), addH('x-bucket', 'denied 3 11000'), addH('x-country', 'none'), addH('x-stamp', `1700000000000/1/${random}`),
        { tag: 'remove-header', val: 'x-remove-me' },
        { tag: 'set-path', val: '/new' }, { tag: 'set-query', val: 'q=1' }, { tag: 'set-method', val: 'PUT' },
        { tag: 'set-property', val: { key: 'echo.seen', value: '1' } }, { tag: 'remove-property', val: 'echo.old' },
        addH('x-view', 'removed /new'),
      ],
    });
    assert.deepEqual(host.calls, [
      ['counterAdd', 'hits:main', 1n, 1000n],
      ['tokenBucketTake', 'tb:10.0.0.1', 10.5, 5, 2],
      ['geoCountry', '10.0.0.1'],
      ['nowMs'], ['monotonicNs'], ['randomU64'],
      ['recordMetric', 13, 1, ['main']],
    ]);
  });

  test('host answers flow back: counters, buckets and a non-ASCII country', async () => {
    const { inst } = await fresh();
    // The recording host answers by length: '1.2.3.4' (7) → `Ω1.`; 'tb:1.2.3.4' (10, even) → allowed.
    onRequestHeaders(inst, 1n, head({ clientAddress: '1.2.3.4' }));
    const d = onRequestHeaders(inst, 2n, head({ clientAddress: '1.2.3.4' }));
    const adds = d.tag === 'mutate' ? d.val.filter((m) => m.tag === 'add-header').map((m) => m.val) : [];
    assert.deepEqual(adds.slice(0, 3), [{ name: 'x-count', value: '2' }, { name: 'x-bucket', value: 'allowed 3 10000' }, { name: 'x-country', value: 'Ω1.' }]);
  });

  test('respond with a non-ASCII body and header value', async () => {
    const { inst, host } = await fresh();
    const d = onRequestHeaders(inst, 1n, head({ path: '/deny' }));
    assert.deepEqual(d, { tag: 'respond', val: { status: 403, headers: [{ name: 'x-reason', value: 'nicht erlaubt — ü' }], body: enc.encode('denied 10.0.0.1 ✗') } });
    assert.deepEqual(host.calls, []);
  });

  test('an abort logs its message and location, then traps', async () => {
    const { inst, host } = await fresh();
    assert.throws(() => onRequestHeaders(inst, 1n, head({ path: '/trap' })), /unreachable/);
    assert.equal(host.calls.length, 1);
    const [fn, level, message] = host.calls[0] as [string, string, string];
    assert.deepEqual([fn, level], ['log', 'error']);
    assert.match(message, /^abort: trap requested at assembly\/index\.ts:\d+:\d+$/);
  });

  test('kv-get and kv-cas: insert, then compare-and-swap on the version read', async () => {
    const { inst, host } = await fresh();
    const kv = (val: string) => onRequestHeaders(inst, 1n, head({ path: '/kv', query: 'a', headers: [{ name: 'x-val', value: val }] }));
    assert.deepEqual(kv('v1'), { tag: 'mutate', val: [setH('x-kv-old', 'none'), setH('x-kv-version', '1')] });
    assert.deepEqual(kv('v2 ✓'), { tag: 'mutate', val: [setH('x-kv-old', 'v1@1'), setH('x-kv-version', '2')] });
    assert.deepEqual(host.calls, [
      ['kvGet', 'k:a'], ['kvCas', 'k:a', enc.encode('v1'), undefined, 60000n],
      ['kvGet', 'k:a'], ['kvCas', 'k:a', enc.encode('v2 ✓'), 1n, 60000n],
    ]);
    assert.deepEqual(kv(''), { tag: 'mutate', val: [setH('x-kv-old', 'v2 ✓@2'), setH('x-kv-version', '3')] });
  });

  test('kv-cas conflict is null', async () => {
    class ConflictHost extends RecordingHost {
      override kvCas(key: string, value: Uint8Array, expectedVersion: bigint | undefined, ttlMs: bigint): bigint | undefined {
        super.kvCas(key, value, expectedVersion, ttlMs);
        return undefined;
      }
    }
    const { inst } = await fresh([], new ConflictHost());
    assert.deepEqual(onRequestHeaders(inst, 1n, head({ path: '/kv', query: 'b' })), { tag: 'mutate', val: [setH('x-kv-old', 'none'), setH('x-kv-version', 'conflict')] });
  });

  test('http-callout: response relayed, error reported', async () => {
    const { inst, host } = await fresh();
    assert.deepEqual(onRequestHeaders(inst, 1n, head({ path: '/callout', query: 'ok' })), {
      tag: 'respond', val: { status: 202, headers: [{ name: 'x-from', value: 'POST' }, { name: 'x-a', value: '1' }, { name: 'x-b', value: 'ß' }], body: enc.encode('pingπ') },
    });
    assert.deepEqual(host.calls, [['httpCallout', { method: 'POST', url: 'http://backend.test/ok', headers: [{ name: 'x-a', value: '1' }, { name: 'x-b', value: 'ß' }], body: enc.encode('ping'), timeoutMs: 250 }]]);
    assert.deepEqual(onRequestHeaders(inst, 2n, head({ path: '/callout', query: 'fail' })), {
      tag: 'respond', val: { status: 502, headers: [], body: enc.encode('WEIR_ERR_UPSTREAM_CONNECT http://backend.test/fail') },
    });
  });
});

describe('echo-sdk: bodies', () => {
  const big = new Uint8Array(1 << 20).map((_, i) => (i * 31 + 7) & 0xff);

  test('request body: empty chunk continues, 1 MiB chunk is replaced, state is per context', async () => {
    const { inst } = await fresh();
    assert.deepEqual(callOnRequestBody(inst, 1n, new Uint8Array(0), false), { tag: 'continue' });
    const d = callOnRequestBody(inst, 1n, big, true);
    assert.equal(d.tag, 'replace');
    const tag = enc.encode('[1048576 end]');
    const got = d.tag === 'replace' ? d.val : new Uint8Array();
    assert.equal(got.length, tag.length + big.length);
    assert.deepEqual(got.subarray(0, tag.length), tag);
    assert.ok(Buffer.from(got.subarray(tag.length)).equals(Buffer.from(big)));
    assert.deepEqual(callOnRequestBody(inst, 2n, enc.encode('reject'), false), {
      tag: 'respond', val: { status: 413, headers: [{ name: 'x-why', value: 'größe' }], body: enc.encode('rejected after 6 bytes') },
    });
    assert.deepEqual(callOnRequestBody(inst, 1n, enc.encode('reject'), true).tag, 'respond');
  });

  test('response body: continue until the end, then the reversed 1 MiB body; empty end chunk', async () => {
    const { inst } = await fresh();
    assert.deepEqual(callOnResponseBody(inst, 1n, big.subarray(0, 10), false), { tag: 'continue' });
    const d = callOnResponseBody(inst, 1n, big, true);
    const got = d.tag === 'replace' ? d.val : new Uint8Array();
    assert.ok(Buffer.from(got).equals(Buffer.from(big.slice().reverse())));
    assert.deepEqual(callOnResponseBody(inst, 2n, new Uint8Array(0), true), { tag: 'replace', val: new Uint8Array(0) });
  });
});

describe('echo-sdk: select-upstream and response headers', () => {
  const t = (index: number, over: Partial<Target> = {}): Target => ({
    index, address: `10.0.0.${index}:80`, weight: 1, zone: 'a', healthy: true, inFlight: 5, ewmaLatencyMs: 10,
    totalRequests: 100n, totalFailures: 0n, consecutiveFailures: 0, lastFailureMs: 0n, ...over,
  });

  test('picks the least busy healthy target in the local zone, skipping the previous one', async () => {
    const { inst } = await fresh();
    const targets = [t(0, { inFlight: 1 }), t(1, { healthy: false, inFlight: 0 }), t(2, { inFlight: 1, ewmaLatencyMs: 2.5 }), t(3, { zone: 'b', inFlight: 0 }), t(4, { inFlight: 3 })];
    assert.equal(selectUpstream(inst, 1n, head(), { name: 'api', localZone: 'a', attempt: 0, previous: undefined }, targets), 2);
    assert.equal(selectUpstream(inst, 1n, head(), { name: 'api', localZone: 'a', attempt: 1, previous: 2 }, targets), 0);
    assert.equal(selectUpstream(inst, 1n, head(), { name: 'api', localZone: '', attempt: 0, previous: undefined }, targets), 3);
    assert.equal(selectUpstream(inst, 1n, head(), { name: 'defer', localZone: 'a', attempt: 0, previous: undefined }, targets), undefined);
    assert.equal(selectUpstream(inst, 1n, head(), { name: 'api', localZone: 'a', attempt: 0, previous: undefined }, []), undefined);
  });

  test('response mutations, status change seen by the view, and respond', async () => {
    const { inst } = await fresh();
    const res = { status: 503, headers: [{ name: 'server', value: 'x' }, { name: 'content-type', value: 'text/plain; charset=utf-8' }] };
    assert.deepEqual(onResponseHeaders(inst, 1n, head({ query: 'a=ü' }), res), {
      tag: 'mutate', val: [
        setH('x-upstream-status', '503'), addH('x-req-path', '/x?a=ü'), { tag: 'remove-header', val: 'server' },
        { tag: 'set-status', val: 502 }, { tag: 'set-property', val: { key: 'echo.status', value: '502' } },
      ],
    });
    assert.deepEqual(onResponseHeaders(inst, 2n, head(), { status: 200, headers: [{ name: 'x-respond', value: '1' }] }), {
      tag: 'respond', val: { status: 418, headers: [], body: enc.encode('teapot') },
    });
  });
});

describe('echo-sdk: on-log and per-request state', () => {
  test('on-log sees the context state and the summary; the context is dropped afterwards', async () => {
    const { inst, host } = await fresh();
    callOnRequestBody(inst, 9n, enc.encode('abc'), false);
    callOnRequestBody(inst, 9n, enc.encode('de'), true);
    callOnResponseBody(inst, 9n, enc.encode('xyz'), true);
    callOnRequestBody(inst, 10n, enc.encode('other'), true);
    host.calls.length = 0;
    callOnLog(inst, 9n, { status: 200, errorCode: undefined, upstreamAddress: '10.0.0.2:80', bytesReceived: 5n, bytesSent: 3n, durationMs: 12.5, upstreamDurationMs: 7.25, attempts: 1 });
    callOnLog(inst, 9n, { status: 502, errorCode: 'WEIR_ERR_UPSTREAM_CONNECT', upstreamAddress: undefined, bytesReceived: 0n, bytesSent: 0n, durationMs: 1.5, upstreamDurationMs: undefined, attempts: 3 });
    assert.deepEqual(host.calls, [
      ['log', 'warn', 'log ctx=9 status=200 error=- upstream=10.0.0.2:80 rx=5 tx=3 dur=12.5 updur=7.25 attempts=1 body=5/3'],
      ['recordMetric', 13, 12.5, ['log']],
      ['log', 'warn', 'log ctx=9 status=502 error=WEIR_ERR_UPSTREAM_CONNECT upstream=- rx=0 tx=0 dur=1.5 updur=- attempts=3 body=0/0'],
      ['recordMetric', 13, 1.5, ['log']],
    ]);
  });

  test('memory stays bounded over many exchanges (arena reset, contexts freed, GC)', async () => {
    const { inst, memory } = await fresh();
    const h = head({ headers: Array.from({ length: 20 }, (_, i) => ({ name: `h${i}`, value: 'v'.repeat(100) })) });
    const run = (from: number, n: number) => {
      for (let i = from; i < from + n; i++) {
        onRequestHeaders(inst, BigInt(i), h);
        callOnRequestBody(inst, BigInt(i), enc.encode('x'.repeat(4096)), true);
        callOnLog(inst, BigInt(i), { status: 200, errorCode: undefined, upstreamAddress: undefined, bytesReceived: 0n, bytesSent: 0n, durationMs: 1, upstreamDurationMs: undefined, attempts: 1 });
      }
    };
    run(0, 300);
    const after300 = memory.buffer.byteLength;
    run(300, 1500);
    assert.ok(memory.buffer.byteLength <= after300 + 256 * 1024, `memory grew from ${after300} to ${memory.buffer.byteLength}`);
  });
});
