// OpenTelemetry tracing through the real proxy: an OTLP/HTTP receiver on loopback decodes
// what Weir exports (protobuf) and the tests assert the spans, their parents, attributes,
// sampling, and the traceparent the origin receives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { startOrigin, type Origin } from '../helpers/origin.ts';
import { startWeirWith, tmpDir } from '../helpers/weir.ts';
import { startOtlpReceiver, KIND, STATUS, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp.ts';
import { freePort } from '../helpers/servers.ts';
import { loadConfigText } from '../../host/src/config/load.ts';

let origin: Origin;
const cleanups: Array<() => Promise<unknown>> = [];

before(async () => {
  origin = await startOrigin((_req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end('ok'));
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
  await origin.close();
});

function config(receiver: OtlpReceiver, tracing: string, extra = ''): string {
  return `listeners { listener "main" { address "127.0.0.1:0"; } }
routes { route "api" { matches { path-prefix "/"; }; upstream "backend"; } }
upstreams { upstream "backend" { target "127.0.0.1:${origin.port}"; } }
observability { tracing { endpoint "${receiver.url}"; ${tracing} } }
${extra}`;
}

async function receiver(): Promise<OtlpReceiver> {
  const r = await startOtlpReceiver();
  cleanups.push(() => r.close());
  return r;
}

/** Parses `traceparent`: version, trace id, parent id, flags. */
function parent(v: string | string[] | undefined): { traceId: string; parentId: string; flags: string } {
  const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(String(v));
  assert.ok(m, `a W3C traceparent: ${v}`);
  return { traceId: m[1]!, parentId: m[2]!, flags: m[3]! };
}

const byKind = (spans: ReceivedSpan[], kind: number): ReceivedSpan[] => spans.filter((s) => s.kind === kind);

test('tracing: a request without traceparent starts a trace; the server span parents the upstream attempt, whose id goes upstream', async () => {
  const r = await receiver();
  const { weir, url } = await startWeirWith(config(r, 'service-name "edge-proxy"'));
  const seenBefore = origin.seen.length;
  const res = await request(`${url}/orders/42?x=1`, { method: 'GET', headers: { host: 'shop.example' } });
  assert.equal(res.statusCode, 200);
  await res.body.dump();
  await weir.close();
  const spans = await r.until((s) => s.length >= 2);
  const [server] = byKind(spans, KIND.SERVER);
  const [client] = byKind(spans, KIND.CLIENT);
  assert.ok(server && client, 'a server and a client span');
  assert.equal(server.parentSpanId, '', 'the server span is a root');
  assert.equal(client.traceId, server.traceId);
  assert.equal(client.parentSpanId, server.spanId, 'the attempt is a child of the request');
  assert.equal(server.name, 'GET api');
  assert.deepEqual(
    { m: server.attributes['http.request.method'], p: server.attributes['url.path'], s: server.attributes['http.response.status_code'], h: server.attributes['server.address'], r: server.attributes['weir.route'], u: server.attributes['weir.upstream'] },
    { m: 'GET', p: '/orders/42', s: 200, h: 'shop.example', r: 'api', u: 'backend' },
  );
  assert.equal(server.attributes['error.type'], undefined);
  assert.equal(client.attributes['server.address'], '127.0.0.1');
  assert.equal(client.attributes['server.port'], origin.port);
  assert.equal(client.attributes['http.response.status_code'], 200);
  assert.equal(client.attributes['weir.upstream'], 'backend');
  assert.equal(server.resource['service.name'], 'edge-proxy');
  assert.ok(server.endNs > server.startNs && client.startNs >= server.startNs && client.endNs <= server.endNs, 'the attempt lies within the request');
  // The origin saw the attempt's span as its parent, sampled.
  const tp = parent(origin.seen[seenBefore]!.headers['traceparent']);
  assert.deepEqual(tp, { traceId: server.traceId, parentId: client.spanId, flags: '01' });
  assert.ok(r.posts.every((p) => p.path === '/v1/traces' && p.contentType === 'application/x-protobuf'), 'OTLP/HTTP protobuf posts');
});

test('tracing: an incoming traceparent (from a client that is not a trusted proxy) is continued, tracestate passes on', async () => {
  const r = await receiver();
  const { weir, url } = await startWeirWith(config(r, ''));
  const seenBefore = origin.seen.length;
  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const res = await request(`${url}/continued`, { headers: { traceparent: incoming, tracestate: 'vendor=abc,other=1' } });
  await res.body.dump();
  await weir.close();
  const spans = await r.until((s) => s.length >= 2);
  const [server] = byKind(spans, KIND.SERVER);
  const [client] = byKind(spans, KIND.CLIENT);
  assert.equal(server!.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(server!.parentSpanId, '00f067aa0ba902b7', 'the client\'s span is the parent');
  assert.equal(server!.traceState, 'vendor=abc,other=1');
  const seen = origin.seen[seenBefore]!.headers;
  const tp = parent(seen['traceparent']);
  assert.equal(tp.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(tp.parentId, client!.spanId, 'a new parent id upstream, not the one the client sent');
  assert.equal(seen['tracestate'], 'vendor=abc,other=1');
});

test('tracing: sample-ratio 0 exports no new trace but still sends a traceparent upstream; a sampled parent is still recorded', async () => {
  const r = await receiver();
  const { weir, url } = await startWeirWith(config(r, 'sample-ratio 0.0'));
  const seenBefore = origin.seen.length;
  await (await request(`${url}/unsampled`)).body.dump();
  const tp = parent(origin.seen[seenBefore]!.headers['traceparent']);
  assert.equal(tp.flags, '00', 'not sampled');
  await (await request(`${url}/sampled-parent`, { headers: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } })).body.dump();
  // And a parent that says not sampled is not recorded either.
  await (await request(`${url}/unsampled-parent`, { headers: { traceparent: '00-1af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' } })).body.dump();
  await weir.close();
  const spans = await r.until((s) => s.length >= 2);
  assert.deepEqual([...new Set(spans.map((s) => s.traceId))], ['0af7651916cd43dd8448eb211c80319c'], 'only the sampled parent\'s trace');
  assert.equal(byKind(spans, KIND.SERVER)[0]!.attributes['url.path'], '/sampled-parent');
  assert.notEqual(tp.traceId, '0'.repeat(32));
});

test('tracing: sample-ratio 0.5 samples about half of new traces', async () => {
  const r = await receiver();
  const { weir, url } = await startWeirWith(config(r, 'sample-ratio 0.5'));
  const n = 200;
  for (let i = 0; i < n; i++) await (await request(`${url}/s${i}`)).body.dump();
  await weir.close();
  await r.until((s) => s.length > 0);
  const traces = byKind(r.spans, KIND.SERVER).length;
  // Binomial(200, 0.5): outside 60..140 has a probability below 1e-8.
  assert.ok(traces > 60 && traces < 140, `${traces} of ${n} sampled`);
});

test('tracing: a failed attempt and its retry are two client spans with error.type; a 502 request span is an error', async () => {
  const r = await receiver();
  const dead = await freePort();
  const { weir, url } = await startWeirWith(`listeners { listener "main" { address "127.0.0.1:0"; } }
routes { route "api" { matches { path-prefix "/"; }; upstream "backend"; policies { retry { max-attempts 2; backoff-ms 1; retry-on "connect-failure"; } } } }
upstreams { upstream "backend" { target "127.0.0.1:${dead}"; target "127.0.0.1:${origin.port}"; load-balancing "round_robin"; } }
observability { tracing { endpoint "${r.url}"; } }
`);
  for (let i = 0; i < 2; i++) await (await request(`${url}/retry${i}`)).body.dump();
  await weir.close();
  await r.until((s) => byKind(s, KIND.SERVER).length >= 2);
  const failed = byKind(r.spans, KIND.CLIENT).filter((s) => s.attributes['error.type'] === 'WEIR_ERR_UPSTREAM_CONNECT');
  assert.ok(failed.length >= 1, 'the attempt to the dead target is an error span');
  assert.equal(failed[0]!.status, STATUS.ERROR);
  assert.equal(failed[0]!.attributes['server.port'], dead);
  const retried = byKind(r.spans, KIND.CLIENT).find((s) => s.traceId === failed[0]!.traceId && s.attributes['http.request.resend_count'] === 1);
  assert.ok(retried, 'the retry is a second attempt span in the same trace, resend_count 1');
  assert.equal(retried.attributes['http.response.status_code'], 200);

  // Every target dead: the request span ends 502 with the error code.
  const r2 = await receiver();
  const w2 = await startWeirWith(`listeners { listener "main" { address "127.0.0.1:0"; } }
routes { route "api" { matches { path-prefix "/"; }; upstream "backend"; } }
upstreams { upstream "backend" { target "127.0.0.1:${dead}"; } }
observability { tracing { endpoint "${r2.url}"; } }
`);
  const res = await request(`${w2.url}/down`);
  assert.equal(res.statusCode, 502);
  await res.body.dump();
  await w2.weir.close();
  const [server] = byKind(await r2.until((s) => byKind(s, KIND.SERVER).length >= 1), KIND.SERVER);
  assert.equal(server!.attributes['http.response.status_code'], 502);
  assert.equal(server!.attributes['error.type'], 'WEIR_ERR_UPSTREAM_CONNECT');
  assert.equal(server!.status, STATUS.ERROR);
});

test('tracing: a 404 from the origin is not an error on the server span, but is on the attempt', async () => {
  const r = await receiver();
  const o = await startOrigin((_req, res) => res.writeHead(404).end());
  cleanups.push(() => o.close());
  const { weir, url } = await startWeirWith(config(r, '').replace(`127.0.0.1:${origin.port}`, `127.0.0.1:${o.port}`));
  await (await request(`${url}/missing`)).body.dump();
  await weir.close();
  const spans = await r.until((s) => s.length >= 2);
  const [server] = byKind(spans, KIND.SERVER);
  const [client] = byKind(spans, KIND.CLIENT);
  assert.equal(server!.status, STATUS.UNSET);
  assert.equal(client!.status, STATUS.ERROR);
  assert.equal(client!.attributes['error.type'], '404');
});

test('tracing: export-delay-ms sends batches while the proxy runs', async () => {
  const r = await receiver();
  const { weir, url } = await startWeirWith(config(r, 'export-delay-ms 50'));
  cleanups.push(() => weir.close());
  await (await request(`${url}/soon`)).body.dump();
  const spans = await r.until((s) => s.length >= 2, 20_000);
  assert.equal(byKind(spans, KIND.SERVER)[0]!.attributes['url.path'], '/soon');
});

test('tracing: enabled #false and no tracing block leave traceparent as the client sent it', async () => {
  const r = await receiver();
  const incoming = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  for (const text of [config(r, 'enabled #false'), config(r, '').replace(/observability \{.*\}\n/, '')]) {
    const { weir, url } = await startWeirWith(text);
    const seenBefore = origin.seen.length;
    await (await request(`${url}/plain`, { headers: { traceparent: incoming } })).body.dump();
    await weir.close();
    assert.equal(origin.seen[seenBefore]!.headers['traceparent'], incoming);
  }
  assert.equal(r.spans.length, 0, 'nothing exported');
});

test('tracing: a reload that adds the tracing block starts exporting', async () => {
  const r = await receiver();
  const { weir, url, file } = await startWeirWith(config(r, '').replace(/observability \{.*\}\n/, ''));
  cleanups.push(() => weir.close());
  await (await request(`${url}/before`)).body.dump();
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, config(r, 'export-delay-ms 50'));
  assert.equal((await weir.reload()).ok, true);
  await (await request(`${url}/after`)).body.dump();
  const spans = await r.until((s) => byKind(s, KIND.SERVER).length >= 1, 20_000);
  assert.deepEqual(byKind(spans, KIND.SERVER).map((s) => s.attributes['url.path']), ['/after']);
});

test('tracing: the access log carries the trace id', async () => {
  const r = await receiver();
  const file = join(tmpDir(), 'access.log');
  const { weir, url } = await startWeirWith(config(r, '').replace('observability {', `observability {\nlogging { access-log "${file}"; }\n`), { accessLog: undefined });
  await (await request(`${url}/logged`, { headers: { traceparent: '00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } })).body.dump();
  await weir.close();
  assert.ok(existsSync(file));
  const line = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['path'] === '/logged');
  assert.equal(line?.['traceId'], '5bf92f3577b34da6a3ce929d0e0e4736');
});

test('tracing: hook-span-threshold-ms: plugin hooks at or over it get a child span', async () => {
  await buildFirstPartyPlugins();
  const filters = 'filters { filter "limit" { type "rate-limit"; max-rps 1000; burst 1000; key "client-ip"; } }\n';
  const spansWith = async (threshold: number): Promise<ReceivedSpan[]> => {
    const r = await receiver();
    const { weir, url } = await startWeirWith(config(r, `hook-span-threshold-ms ${threshold}`, filters).replace('upstream "backend"; }', 'upstream "backend"; filters "limit"; }'));
    await (await request(`${url}/limited`)).body.dump();
    await weir.close();
    return r.until((s) => byKind(s, KIND.SERVER).length >= 1);
  };
  const all = await spansWith(0);
  const [server] = byKind(all, KIND.SERVER);
  const hooks = byKind(all, KIND.INTERNAL);
  assert.ok(hooks.length >= 1, 'threshold 0: every hook call has a span');
  assert.ok(hooks.every((h) => h.parentSpanId === server!.spanId && h.traceId === server!.traceId));
  assert.ok(hooks.some((h) => h.attributes['weir.hook'] === 'on-request-headers'), hooks.map((h) => h.name).join());
  assert.equal(byKind(await spansWith(60_000), KIND.INTERNAL).length, 0, 'a one-minute threshold: none');
});

test(`tracing: Sentinel's spelling (backend "otlp" { endpoint }, sampling-rate) works the same`, async () => {
  const r = await receiver();
  const { weir, url } = await startWeirWith(config(r, '').replace(`endpoint "${r.url}";`, `backend "otlp" { endpoint "${r.url}"; }; sampling-rate 0.0; service-name "sentinel-spelling";`));
  await (await request(`${url}/new-trace`)).body.dump();
  await (await request(`${url}/sampled`, { headers: { traceparent: '00-6bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } })).body.dump();
  await weir.close();
  const spans = await r.until((s) => s.length >= 2);
  assert.deepEqual([...new Set(spans.map((s) => s.traceId))], ['6bf92f3577b34da6a3ce929d0e0e4736'], 'sampling-rate 0.0: only the sampled parent');
  assert.equal(spans[0]!.resource['service.name'], 'sentinel-spelling');
});

test('tracing config: refused and checked at load with file:line:column', async () => {
  const load = async (t: string) => loadConfigText(`observability { tracing { ${t} } }\n`, 'weir.kdl');
  const codes = async (t: string): Promise<string[]> => {
    const res = await load(t);
    return res.ok ? res.warnings.map((w) => `warning ${w.code}`) : res.diagnostics.map((d) => `${d.code}@${d.loc?.line}:${d.loc?.column}`);
  };
  assert.deepEqual(await codes('service-name "x"'), ['WEIR_ERR_CONFIG_MISSING@1:17']);
  assert.deepEqual(await codes('endpoint "http://a:4318"; backend "otlp" { endpoint "http://b:4318"; }'), ['WEIR_ERR_CONFIG_DUPLICATE@1:53']);
  assert.deepEqual(await codes('backend "jaeger" { endpoint "http://j:14268"; }'), ['WEIR_ERR_CONFIG_UNSUPPORTED@1:35']);
  assert.deepEqual(await codes('endpoint "http://a:4318"; sample-ratio 0.5; sampling-rate 0.5'), ['WEIR_ERR_CONFIG_DUPLICATE@1:71']);
  assert.deepEqual(await codes('endpoint "ftp://a"'), ['WEIR_ERR_CONFIG_VALUE@1:36']);
  assert.deepEqual(await codes('endpoint "http://a:4318"; sample-ratio 1.5'), ['WEIR_ERR_CONFIG_VALUE@1:66']);
  assert.deepEqual(await codes('endpoint "http://collector:4317"'), ['warning WEIR_ERR_CONFIG_VALUE']);
  const ok = await load('endpoint "http://collector:4318"');
  assert.ok(ok.ok && ok.config.observability.tracing?.endpoint === 'http://collector:4318');
});

test('tracing with worker-threads 2: every proxy thread exports its spans, each as its own service.instance.id', async () => {
  const { startCluster } = await import('../../host/src/cluster/supervisor.ts');
  const { quiet } = await import('../helpers/weir.ts');
  const { writeFileSync } = await import('node:fs');
  const http = await import('node:http');
  const r = await receiver();
  const port = await freePort();
  const file = join(tmpDir(), 'weir.kdl');
  writeFileSync(file, `system { worker-threads 2; graceful-shutdown-timeout-secs 5; }
listeners { listener "main" { address "127.0.0.1:${port}"; } }
routes {
    route "status" { priority 10; matches { path "/_/status"; }; builtin-handler "status"; }
    route "api" { matches { path-prefix "/"; }; upstream "backend"; }
}
upstreams { upstream "backend" { target "127.0.0.1:${origin.port}"; } }
observability { logging { level "silent"; access-log #false; }
    tracing { endpoint "${r.url}"; service-name "threads"; } }
`);
  const cluster = await startCluster({ configPath: file, logger: quiet, watch: false });
  const get = (path: string): Promise<string> => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  const threads = new Set<number>();
  let sent = 0;
  // Fresh connections until the kernel gave both threads some.
  while (threads.size < 2 && sent < 400) {
    threads.add((JSON.parse(await get('/_/status')) as { thread: number }).thread);
    sent++;
  }
  assert.equal(threads.size, 2, 'both threads answered');
  const n = 100;
  for (let i = 0; i < n; i++) await get(`/api/${i}`);
  await cluster.close();
  const spans = await r.until((s) => byKind(s, KIND.SERVER).length >= n);
  const servers = byKind(spans, KIND.SERVER);
  assert.equal(servers.length, n, 'one server span per proxied request, from whichever thread served it; the status route is not traced');
  assert.equal(new Set(servers.map((s) => s.resource['service.instance.id'])).size, 2, 'both threads exported');
  assert.ok(servers.every((s) => s.resource['service.name'] === 'threads' && s.attributes['weir.route'] === 'api'));
});

test('tracing: hooks of a worker-isolated plugin are child spans of the request span too (times on the proxy thread\'s clock)', async () => {
  const { buildOnce } = await import('../sdk-as/helpers.ts');
  const { fileURLToPath } = await import('node:url');
  const { result } = await buildOnce(fileURLToPath(new URL('../fixtures/as/attempts/', import.meta.url)));
  const r = await receiver();
  const { weir, url } = await startWeirWith(config(r, 'hook-span-threshold-ms 0', `plugins { plugin "iso" { path "${result.outFile}"; isolation "worker"; pool-size 1; timeout-ms 5000; } }
filters { filter "iso" { type "wasm"; plugin "iso"; failure-mode "closed"; } }
`).replace('upstream "backend"; }', 'upstream "backend"; filters "iso"; }'));
  const res = await request(`${url}/isolated`);
  assert.equal(res.statusCode, 200);
  await res.body.dump();
  await weir.close();
  const spans = await r.until((s) => byKind(s, KIND.SERVER).length >= 1);
  const [server] = byKind(spans, KIND.SERVER);
  const hooks = byKind(spans, KIND.INTERNAL);
  assert.ok(hooks.some((h) => h.attributes['weir.hook'] === 'on-request-headers'), hooks.map((h) => h.name).join() || 'no hook span');
  for (const h of hooks) {
    assert.equal(h.parentSpanId, server!.spanId);
    assert.ok(h.startNs >= server!.startNs && h.endNs <= server!.endNs, `${h.name} lies within the request`);
  }
});

test('tracing: a plugin adds attributes and events to the request span (span-set-attribute, span-add-event), inline and worker-isolated; Weir\'s own keys stay Weir\'s', async () => {
  const { buildOnce } = await import('../sdk-as/helpers.ts');
  const { fileURLToPath } = await import('node:url');
  const { result } = await buildOnce(fileURLToPath(new URL('../fixtures/as/span-tagger/', import.meta.url)));
  for (const isolation of ['inline', 'worker']) {
    const r = await receiver();
    const { weir, url } = await startWeirWith(config(r, '', `plugins { plugin "tagger" { path "${result.outFile}"; isolation "${isolation}"; pool-size 1; } }
filters { filter "tagger" { type "wasm"; plugin "tagger"; failure-mode "closed"; } }
`).replace('upstream "backend"; }', 'upstream "backend"; filters "tagger"; }'));
    const res = await request(`${url}/tag/me`, { headers: { 'x-tier': 'gold' } });
    assert.equal(res.statusCode, 200);
    await res.body.dump();
    // A request that is not recorded: the calls do nothing.
    await (await request(`${url}/unrecorded`, { headers: { traceparent: '00-9af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00' } })).body.dump();
    await weir.close();
    const spans = await r.until((s) => byKind(s, KIND.SERVER).length >= 1);
    const servers = byKind(spans, KIND.SERVER);
    assert.equal(servers.length, 1, isolation);
    const server = servers[0]!;
    assert.equal(server.attributes['app.tier'], 'gold', isolation);
    assert.equal(server.attributes['http.request.method'], 'GET', `${isolation}: Weir's attribute is not overwritten`);
    assert.equal(server.attributes['weir.route'], 'api', isolation);
    assert.deepEqual(server.events, [{ name: 'tagged', attributes: { path: '/tag/me' } }], isolation);
  }
});
