/**
 * The Rust echo fixture, built with the Rust SDK, run through the generated codec: every
 * export, every host import, decisions and mutations, non-ASCII text, empty and 1 MiB
 * bodies, config errors, per-request state, and memory that does not grow across requests.
 */
import assert from 'node:assert/strict';
import { PLUGIN_WORLD } from '../../plugin-abi/generated/world.ts';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { before, describe, test } from 'node:test';
import {
  callConfigure, callDescribe, callOnLog, callOnRequestBody, callOnResponseBody,
} from '../../plugin-abi/generated/codec.ts';
import type { ConfigNode, ConfigValue, Header, LogSummary, Target, UpstreamInfo } from '../../plugin-abi/generated/types.ts';
import { buildRustEcho, freshEcho, skipReason, type Echo } from './rust-echo.ts';
import { onRequestHeaders, selectUpstream, onResponseHeaders, type RequestHead, type ResponseHead } from '../plugin-abi/with-head.ts';

const skip = await skipReason();
if (skip) console.log(`# skipping Rust SDK tests: ${skip}`);

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (val: string): ConfigValue => ({ tag: 'text', val });
const node = (name: string, args: ConfigValue[] = [], parent?: number, props: ConfigNode['props'] = []): ConfigNode => ({ name, parent, args, props });

const HEADERS: Header[] = [
  { name: 'accept', value: '*/*' },
  { name: 'x-name', value: 'héllo wörld 🌍' },
  { name: 'x-multi', value: '1' },
  { name: 'x-multi', value: '2' },
  { name: 'x-remove', value: 'gone' },
];

function head(over: Partial<RequestHead> = {}): RequestHead {
  return {
    method: 'GET', scheme: 'https', authority: 'example.com', path: '/api', query: 'a=1', headers: HEADERS,
    clientAddress: '192.0.2.1', clientPort: 5000, routeName: 'api',
    properties: [{ key: 'user', value: 'ünï' }, { key: 'tmp', value: 'x' }], httpVersion: '1.1', ...over,
  };
}

const GOOD_CONFIG: ConfigNode[] = [
  node('header', [text('x-plugin')], undefined, [{ name: 'mode', value: text('strict') }]),
  node('limit', [{ tag: 'integer', val: 5n }]),
  node('enabled', [{ tag: 'boolean', val: true }]),
  node('ratio', [{ tag: 'float', val: 0.5 }]),
  node('upstream'),
  node('zone', [text('eu')], 4),
  node('weight', [], 4, [{ name: 'value', value: { tag: 'float', val: 2.5 } }]),
  node('misc', [{ tag: 'null' }]),
];

async function configured(config: ConfigNode[] = GOOD_CONFIG): Promise<Echo> {
  const e = await freshEcho();
  assert.deepEqual(callConfigure(e.inst, config), { tag: 'ok', val: undefined });
  e.host.calls.length = 0;
  return e;
}

describe('Rust SDK: echo fixture', { skip }, () => {
  before(async () => {
    await buildRustEcho();
  });

  test('builds a small core module that loads as a plugin component', async (t) => {
    const b = await buildRustEcho();
    t.diagnostic(`cargo build ${b.buildMs.toFixed(0)} ms; core ${b.coreBytes.length} bytes; component ${b.component.length} bytes`);
    assert.ok(b.coreBytes.length < 256 * 1024, `core module is ${b.coreBytes.length} bytes`);
    const host = PLUGIN_WORLD.imports.find((i) => i.interface.includes('/host@'))!.funcs.map((f) => f.name);
    assert.deepEqual(b.hostFunctions.filter((f) => host.includes(f)).sort(), [
      'counter-add', 'define-metric', 'geo-country', 'http-callout', 'kv-cas', 'kv-get', 'log', 'monotonic-ns',
      'now-ms', 'random-u64', 'record-metric', 'token-bucket-take',
    ]);
    // The head comes through the exchange functions the views call.
    for (const f of ['request-path', 'request-headers', 'request-header-values', 'request-property', 'response-status']) assert.ok(b.hostFunctions.includes(f), f);
  });

  test('builds with Debian rustc 1.63 when installed', { skip: !existsSync('/usr/bin/rustc') && 'no /usr/bin/rustc' }, async () => {
    assert.match(execFileSync('/usr/bin/rustc', ['--version'], { encoding: 'utf8' }), /^rustc 1\.\d+/);
    // buildRustEcho prefers /usr/bin/rustc; reaching here means it compiled the SDK.
    assert.ok((await buildRustEcho()).coreBytes.length > 0);
  });

  test('describe derives hooks and body modes', async () => {
    const { inst } = await freshEcho();
    assert.deepEqual(callDescribe(inst), {
      name: 'rust-echo', version: '0.2.0',
      hooks: ['on-request-headers', 'on-request-body', 'select-upstream', 'on-response-headers', 'on-response-body', 'on-log'],
      requestBody: { tag: 'streamed' }, responseBody: { tag: 'buffered', val: 1048576 }, configSchema: '{"type":"object"}',
    });
  });

  test('configure reads typed values, children and props', async () => {
    const { inst, host } = await freshEcho();
    assert.deepEqual(callConfigure(inst, GOOD_CONFIG), { tag: 'ok', val: undefined });
    assert.deepEqual(host.calls, [
      ['defineMetric', 'echo_logs', 'counter', 'on-log calls', ['hook', 'error']],
      ['log', 'info', 'configured nodes=8 header=Some("x-plugin") mode=Some("strict") limit=Some(5) enabled=Some(true) ratio=Some(0.5) zone=Some("eu") weight=Some(2.5) nulls=1'],
    ]);
  });

  test('configure with an empty block', async () => {
    const { inst, host } = await freshEcho();
    assert.deepEqual(callConfigure(inst, []), { tag: 'ok', val: undefined });
    assert.deepEqual(host.of('log'), [['info', 'configured nodes=0 header=None mode=None limit=None enabled=None ratio=None zone=None weight=None nulls=0']]);
  });

  test('configure errors name the offending node', async () => {
    let e = await freshEcho();
    assert.deepEqual(callConfigure(e.inst, [node('limit', [{ tag: 'integer', val: 5n }]), node('fail', [text('bööm')])]), {
      tag: 'err', val: { message: 'fail: bööm', node: 1 },
    });
    e = await freshEcho();
    assert.deepEqual(callConfigure(e.inst, [node('header', [text('x')]), node('limit', [text('ten')])]), {
      tag: 'err', val: { message: '`limit` needs an integer argument', node: 1 },
    });
  });

  test('on-request-headers records mutations from the view, in order', async () => {
    const { inst, host } = await configured();
    assert.deepEqual(onRequestHeaders(inst, 7n, head()), {
      tag: 'mutate',
      val: [
        { tag: 'set-header', val: { name: 'x-echo-accept', value: '*/*' } },
        { tag: 'set-header', val: { name: 'x-echo-x-name', value: 'héllo wörld 🌍' } },
        { tag: 'set-header', val: { name: 'x-echo-x-multi', value: '1' } },
        { tag: 'set-header', val: { name: 'x-echo-x-multi', value: '2' } },
        { tag: 'set-header', val: { name: 'x-echo-x-remove', value: 'gone' } },
        { tag: 'add-header', val: { name: 'x-count', value: '5' } },
        { tag: 'set-path', val: '/api/echo' },
        { tag: 'set-query', val: 'a=1' },
        { tag: 'set-method', val: 'GET' },
        { tag: 'set-authority', val: 'example.com' },
        { tag: 'set-property', val: { key: 'ctx', value: '7' } },
        { tag: 'set-property', val: { key: 'count', value: '1' } },
        { tag: 'set-property', val: { key: 'country', value: 'NZ' } },
        { tag: 'set-property', val: { key: 'user', value: 'ünï!' } },
        { tag: 'remove-header', val: 'x-remove' },
        { tag: 'remove-property', val: 'tmp' },
        { tag: 'set-header', val: { name: 'x-plugin', value: 'on' } },
      ],
    });
    assert.deepEqual(host.calls, [['counterAdd', 'api', 1n, 1000n], ['geoCountry', '192.0.2.1']]);
  });

  test('on-request-headers: Mutate appends after the view, Respond replies, non-ASCII from the host', async () => {
    const { inst } = await configured([]);
    const d = onRequestHeaders(inst, 1n, head({ path: '/mutate', clientAddress: '2001:db8::1', headers: HEADERS.slice(2, 4), properties: [] }));
    assert.equal(d.tag, 'mutate');
    const list = d.tag === 'mutate' ? d.val : [];
    assert.deepEqual(list.at(-1), { tag: 'add-header', val: { name: 'x-summary', value: 'GET https://example.com/mutate/echo?a=1 1.1 2001:db8::1:5000 1+2' } });
    assert.deepEqual(list.find((m) => m.tag === 'set-property' && m.val.key === 'country'), { tag: 'set-property', val: { key: 'country', value: 'Ωß' } });
    assert.deepEqual(list.find((m) => m.tag === 'set-property' && m.val.key === 'count'), { tag: 'set-property', val: { key: 'count', value: '1' } });
    assert.deepEqual(onRequestHeaders(inst, 2n, head({ path: '/deny', query: 'wer=ß' })), {
      tag: 'respond', val: { status: 403, headers: [{ name: 'x-reason', value: 'api' }], body: enc.encode('wer=ß') },
    });
    // No headers, no properties, unknown country, empty strings.
    const empty = onRequestHeaders(inst, 3n, head({ headers: [], properties: [], clientAddress: '10.0.0.1', query: '', authority: '' }));
    assert.deepEqual(empty.tag === 'mutate' ? empty.val.map((m) => m.tag) : [], [
      'add-header', 'set-path', 'set-query', 'set-method', 'set-authority', 'set-property', 'set-property', 'remove-header', 'remove-property',
    ]);
  });

  test('on-request-body: continue, replace through kv, respond, empty chunks', async () => {
    const { inst, host } = await configured();
    assert.deepEqual(callOnRequestBody(inst, 7n, new Uint8Array(0), true), { tag: 'continue' });
    assert.deepEqual(callOnRequestBody(inst, 7n, enc.encode('hello'), false), { tag: 'replace', val: enc.encode('olleh|kv=5:1|cas=Some(1)') });
    assert.deepEqual(callOnRequestBody(inst, 7n, enc.encode('ab'), true), { tag: 'replace', val: enc.encode('ba$|kv=2:2|cas=Some(2)') });
    assert.deepEqual(callOnRequestBody(inst, 7n, new Uint8Array(0), false), { tag: 'replace', val: enc.encode('|kv=0:3|cas=Some(3)') });
    assert.deepEqual(callOnRequestBody(inst, 7n, enc.encode('Xü'), false), { tag: 'respond', val: { status: 413, headers: [], body: enc.encode('Xü') } });
    assert.deepEqual(host.of('kvCas'), [['last', 5, undefined, 0n], ['last', 2, 1n, 0n], ['last', 0, 2n, 0n]]);
    assert.equal(host.of('kvGet').length, 6);
  });

  test('bodies of 1 MiB both ways', async () => {
    const { inst } = await configured();
    const big = new Uint8Array(1 << 20);
    for (let i = 0; i < big.length; i++) big[i] = 97 + (i % 26);
    const req = callOnRequestBody(inst, 1n, big, true);
    assert.equal(req.tag, 'replace');
    const r = req.tag === 'replace' ? req.val : new Uint8Array();
    const suffix = '$|kv=1048576:1|cas=Some(1)';
    assert.equal(r.length, big.length + suffix.length);
    assert.equal(r[0], big[big.length - 1]);
    assert.equal(r[big.length - 1], big[0]);
    assert.equal(dec.decode(r.subarray(big.length)), suffix);
    const resp = callOnResponseBody(inst, 1n, big, true);
    const out = resp.tag === 'replace' ? resp.val : new Uint8Array();
    assert.equal(out[0], 65);
    assert.equal(out[(1 << 20) - 1], 65 + (((1 << 20) - 1) % 26));
    assert.match(dec.decode(out.subarray(1 << 20)), /^\|true\|\d+,\d+,\d+$/);
  });

  test('select-upstream chooses, defers and reads every target field', async () => {
    const { inst, host } = await configured();
    const target = (index: number, over: Partial<Target> = {}): Target => ({
      index, address: `t${index}:80`, weight: 1, zone: 'eu', healthy: true, inFlight: 0, ewmaLatencyMs: 5,
      totalRequests: 0n, totalFailures: 0n, consecutiveFailures: 0, lastFailureMs: 0n, ...over,
    });
    const targets = [
      target(0, { ewmaLatencyMs: 0 }),
      target(1, { weight: 3, ewmaLatencyMs: 10, inFlight: 2, totalRequests: 9n, totalFailures: 1n, consecutiveFailures: 1, lastFailureMs: 15n }),
      target(2, { ewmaLatencyMs: 1.5, weight: 2, consecutiveFailures: 3, lastFailureMs: 9n }),
      target(3, { zone: 'us', ewmaLatencyMs: 0 }),
      target(4, { healthy: false, ewmaLatencyMs: 0 }),
    ];
    const up = (over: Partial<UpstreamInfo> = {}): UpstreamInfo => ({ name: 'pool', localZone: 'eu', attempt: 1, previous: 0, ...over });
    // Best of t1, t2: t2 → 2*1000 + attempt 1 + 3 failures + 9 % 7 + weight 2.
    assert.equal(selectUpstream(inst, 7n, head(), up(), targets), 2008);
    // previous none: t0 (score 0) wins → 0 + 1 + 0 + 0 + 1.
    assert.equal(selectUpstream(inst, 7n, head(), up({ previous: undefined }), targets), 2);
    // Bucket empty: last target index 4 + remaining 4 + retry 90.
    assert.equal(selectUpstream(inst, 7n, head(), up({ name: 'deny-pool' }), targets), 98);
    assert.equal(selectUpstream(inst, 7n, head({ routeName: 'defer' }), up({ name: 'deny-pool' }), targets), undefined);
    assert.equal(selectUpstream(inst, 7n, head(), up(), []), undefined);
    assert.deepEqual(host.of('tokenBucketTake')[0], ['pool', 10.5, 5, 1]);
  });

  test('on-response-headers: status, headers, callout ok and failed, respond', async () => {
    const { inst, host } = await configured();
    const resp: ResponseHead = { status: 200, headers: [{ name: 'content-type', value: 'text/plain; charset=ütf' }, { name: 'x-drop', value: '1' }] };
    assert.deepEqual(onResponseHeaders(inst, 7n, head(), resp), {
      tag: 'mutate',
      val: [
        { tag: 'set-status', val: 201 },
        { tag: 'add-header', val: { name: 'x-r-content-type', value: 'text/plain; charset=ütf' } },
        { tag: 'add-header', val: { name: 'x-r-x-drop', value: '1' } },
        { tag: 'set-header', val: { name: 'x-req-path', value: '/api' } },
        { tag: 'add-header', val: { name: 'x-callout', value: '202:/api→π' } },
        { tag: 'add-header', val: { name: 'x-from', value: 'GET' } },
        { tag: 'set-property', val: { key: 'calls', value: '1' } },
        { tag: 'remove-header', val: 'x-drop' },
        { tag: 'remove-property', val: 'calls' },
      ],
    });
    assert.deepEqual(host.of('httpCallout'), [[{ method: 'GET', url: 'http://example.com/api', headers: resp.headers, body: enc.encode('/api'), timeoutMs: 1000 }]]);
    const failed = onResponseHeaders(inst, 8n, head({ authority: 'fail.example' }), { status: 404, headers: [] });
    assert.deepEqual(failed.tag === 'mutate' ? failed.val.slice(0, 3) : failed, [
      { tag: 'set-status', val: 405 },
      { tag: 'set-header', val: { name: 'x-req-path', value: '/api' } },
      { tag: 'add-header', val: { name: 'x-callout-error', value: 'WEIR_ERR_CALLOUT_FAILED http://fail.example/api' } },
    ]);
    assert.deepEqual(onResponseHeaders(inst, 9n, head(), { status: 599, headers: [] }), {
      tag: 'respond', val: { status: 502, headers: [], body: enc.encode('/api→π') },
    });
  });

  test('on-response-body uses random, now and monotonic', async () => {
    const { inst, host } = await configured();
    assert.deepEqual(callOnResponseBody(inst, 7n, new Uint8Array(0), true), { tag: 'continue' });
    assert.deepEqual(callOnResponseBody(inst, 7n, enc.encode('héllo'), false), {
      tag: 'replace', val: enc.encode('HéLLO|false|18364758544493064721,1700000000001,2'),
    });
    assert.deepEqual(host.calls.map((c) => c[0]), ['randomU64', 'nowMs', 'monotonicNs']);
  });

  test('per-request contexts live until on-log, then start over', async () => {
    const { inst, host } = await configured();
    onRequestHeaders(inst, 9n, head());
    callOnRequestBody(inst, 9n, enc.encode('x'), true);
    selectUpstream(inst, 9n, head(), { name: 'p', localZone: '', attempt: 0, previous: undefined }, []);
    const d = onResponseHeaders(inst, 9n, head(), { status: 200, headers: [] });
    assert.deepEqual(d.tag === 'mutate' ? d.val.at(-1) : d, { tag: 'set-property', val: { key: 'calls', value: '4' } });
    callOnResponseBody(inst, 9n, enc.encode('y'), true);
    const summary: LogSummary = {
      status: 503, errorCode: 'WEIR_ERR_UPSTREAM_CONNECT', upstreamAddress: 'b:80', bytesReceived: 10n, bytesSent: 20n,
      durationMs: 12.5, upstreamDurationMs: 3, attempts: 2,
    };
    host.calls.length = 0;
    callOnLog(inst, 9n, summary);
    callOnLog(inst, 9n, { status: 204, errorCode: undefined, upstreamAddress: undefined, bytesReceived: 0n, bytesSent: 0n, durationMs: 0, upstreamDurationMs: undefined, attempts: 0 });
    assert.deepEqual(host.calls, [
      ['log', 'error', 'log ctx=9 calls=6 status=503 error=Some("WEIR_ERR_UPSTREAM_CONNECT") upstream=Some("b:80") in=10 out=20 duration=12.5 upstream-duration=Some(3.0) attempts=2'],
      ['recordMetric', 49, 12.5, ['on-log', 'WEIR_ERR_UPSTREAM_CONNECT']],
      ['log', 'info', 'log ctx=9 calls=1 status=204 error=None upstream=None in=0 out=0 duration=0 upstream-duration=None attempts=0'],
      ['recordMetric', 49, 0, ['on-log', '-']],
    ]);
  });

  test('guest memory stays flat across many requests (arguments and results are freed)', async () => {
    const { inst, mem } = await configured();
    const body = new Uint8Array(64 * 1024).fill(98);
    const headers = Array.from({ length: 50 }, (_, i) => ({ name: `x-h${i}`, value: 'v'.repeat(200) + 'é' }));
    const round = (ctx: bigint): void => {
      onRequestHeaders(inst, ctx, head({ headers }));
      callOnRequestBody(inst, ctx, body, true);
      onResponseHeaders(inst, ctx, head(), { status: 200, headers });
      callOnResponseBody(inst, ctx, body, true);
      callOnLog(inst, ctx, { status: 200, errorCode: undefined, upstreamAddress: 'a:1', bytesReceived: 1n, bytesSent: 1n, durationMs: 1, upstreamDurationMs: 1, attempts: 1 });
    };
    for (let i = 0n; i < 30n; i++) round(i);
    const after30 = mem.memory!.buffer.byteLength;
    for (let i = 30n; i < 300n; i++) round(i);
    assert.equal(mem.memory!.buffer.byteLength, after30);
  });
});
