import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { Readable } from 'node:stream';
import { request, Agent } from 'undici';
import { startOrigin, echo } from '../helpers/origin.ts';
import { basicConfig, startWeirWith } from '../helpers/weir.ts';
import { rawRequest } from '../helpers/http.ts';

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function setup(extra: Parameters<typeof basicConfig>[1] = {}, handler?: Parameters<typeof startOrigin>[0]) {
  const origin = await startOrigin(handler);
  const { weir, url } = await startWeirWith(basicConfig(origin.port, extra));
  cleanups.push(() => origin.close(), () => weir.close());
  return { origin, weir, url, port: weir.address().port };
}

test('hop-by-hop headers are stripped both ways; forwarding headers are added', async () => {
  const { origin, port } = await setup({}, (req, res) => {
    res.writeHead(200, { 'keep-alive': 'timeout=5', 'x-secret-hop': 'no', connection: 'x-secret-hop', 'proxy-authenticate': 'Basic', 'x-kept': 'yes' });
    res.end('ok');
  });
  const reply = await rawRequest(
    port,
    'GET /h?q=1 HTTP/1.1\r\nHost: svc.example\r\nConnection: close, x-drop-me\r\nX-Drop-Me: 1\r\nKeep-Alive: 300\r\nTE: gzip\r\nProxy-Authorization: Basic abc\r\nUpgrade: foo\r\nX-Forwarded-For: 10.0.0.1\r\nX-Keep: 1\r\n\r\n',
  );
  const seen = origin.seen.at(-1)!;
  for (const h of ['x-drop-me', 'keep-alive', 'te', 'proxy-authorization', 'upgrade']) assert.equal(seen.headers[h], undefined, `${h} must not reach the origin`);
  assert.notEqual(seen.headers['connection'], 'close, x-drop-me');
  assert.equal(seen.headers['x-keep'], '1');
  assert.equal(seen.headers['host'], 'svc.example', 'Host is preserved');
  // The test client is not a trusted proxy: its X-Forwarded-For is dropped, the peer is sent.
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.headers['x-forwarded-proto'], 'http');
  assert.equal(seen.headers['x-forwarded-host'], 'svc.example');
  assert.equal(seen.headers['via'], '1.1 weir');
  assert.match(String(seen.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  assert.equal(seen.url, '/h?q=1');
  const head = reply.split('\r\n\r\n')[0]!.toLowerCase();
  assert.match(head, /^http\/1\.1 200/);
  assert.ok(!head.includes('x-secret-hop'), 'headers named by the upstream Connection are dropped');
  assert.ok(!head.includes('proxy-authenticate'));
  assert.ok(!head.includes('keep-alive: timeout=5'));
  assert.ok(head.includes('x-kept: yes'));
  assert.ok(head.includes('via: 1.1 weir'));
});

test('an incoming x-request-id is propagated to the origin and the client', async () => {
  const { origin, url } = await setup();
  const res = await request(`${url}/id`, { headers: { 'x-request-id': 'trace-123' } });
  await res.body.dump();
  assert.equal(origin.seen.at(-1)!.headers['x-request-id'], 'trace-123');
});

test('repeated request headers all reach the origin', async () => {
  const { origin, port } = await setup();
  await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a\r\nX-Multi: 1\r\nX-Multi: 2\r\nCookie: a=1\r\nConnection: close\r\n\r\n');
  const raw = origin.seen.at(-1)!.rawHeaders;
  const multi = raw.filter((_, i) => i % 2 === 1 && raw[i - 1]!.toLowerCase() === 'x-multi');
  assert.deepEqual(multi, ['1', '2']);
});

test('connect refused → 502 WEIR_ERR_UPSTREAM_CONNECT', async () => {
  // A port that was free a moment ago: nothing listens there.
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const dead = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const { weir, url } = await startWeirWith(basicConfig(dead));
  cleanups.push(() => weir.close());
  const res = await request(`${url}/x`);
  assert.equal(res.statusCode, 502);
  assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'WEIR_ERR_UPSTREAM_CONNECT');
});

test('route timeout → 504 WEIR_ERR_UPSTREAM_TIMEOUT', async () => {
  const { url } = await setup({ policies: 'timeout-secs 0.2' }, (_req, res) => {
    setTimeout(() => res.end('late'), 2000).unref();
  });
  const res = await request(`${url}/slow`);
  assert.equal(res.statusCode, 504);
  assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'WEIR_ERR_UPSTREAM_TIMEOUT');
});

test('body over max-body-size → 413 before anything reaches the origin', async () => {
  const { origin, url } = await setup({ policies: 'max-body-size 1000' });
  const before = origin.seen.length;
  const res = await request(`${url}/upload`, { method: 'POST', body: Buffer.alloc(5000, 1) });
  assert.equal(res.statusCode, 413);
  assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'WEIR_ERR_BODY_TOO_LARGE');
  assert.equal(origin.seen.length, before);
  // a chunked body (no Content-Length) is cut off when it passes the limit
  async function* gen() {
    for (let i = 0; i < 10; i++) yield Buffer.alloc(500, 2);
  }
  const res2 = await request(`${url}/upload`, { method: 'POST', body: Readable.from(gen()) });
  assert.equal(res2.statusCode, 413);
  await res2.body.dump();
});

test('upstream reset mid-request → 502 WEIR_ERR_UPSTREAM_RESET', async () => {
  const { url } = await setup({}, (req) => req.socket.destroy());
  const res = await request(`${url}/reset`);
  assert.equal(res.statusCode, 502);
  assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'WEIR_ERR_UPSTREAM_RESET');
});

test('retries idempotent requests on connect failure to another target, not POSTs', async () => {
  const good = await startOrigin();
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const dead = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const cfg = `
listeners { listener "main" { address "127.0.0.1:0"; } }
routes {
    route "r" {
        matches { path-prefix "/"; }
        upstream "two"
        policies { retry { max-attempts 3; backoff-ms 1; max-backoff-ms 5; retry-on "connect-failure"; } }
    }
}
upstreams { upstream "two" { target "127.0.0.1:${dead}"; target "127.0.0.1:${good.port}"; } }`;
  const { weir, url } = await startWeirWith(cfg);
  cleanups.push(() => good.close(), () => weir.close());
  for (let i = 0; i < 6; i++) {
    const res = await request(`${url}/r${i}`);
    assert.equal(res.statusCode, 200, `GET ${i} must be retried onto the live target`);
    await res.body.dump();
  }
  const metrics = await weir.metrics.registry.getSingleMetricAsString('weir_upstream_retries_total');
  assert.match(metrics, /weir_upstream_retries_total\{upstream="two"\} [1-9]/);
  // POST is not idempotent: no retry, the connect failure surfaces (when the dead target is picked)
  let saw502 = false;
  for (let i = 0; i < 4; i++) {
    const res = await request(`${url}/p`, { method: 'POST', body: 'x' });
    await res.body.dump();
    if (res.statusCode === 502) saw502 = true;
  }
  assert.ok(saw502, 'a POST to the dead target is not retried');
});

test('retry on 503 from the upstream when configured', async () => {
  let n = 0;
  const { origin, url } = await setup({ policies: 'retry { max-attempts 3; backoff-ms 1; retry-on "503"; }' }, (req, res, body) => {
    if (n++ % 2 === 0) {
      res.writeHead(503).end('busy');
      return;
    }
    echo(req, res, body);
  });
  const res = await request(`${url}/flaky`);
  assert.equal(res.statusCode, 200);
  await res.body.dump();
  assert.equal(origin.seen.length, 2);
});

test('HTTP/2 cleartext (prior knowledge) downstream', async () => {
  const { url } = await setup();
  const agent = new Agent({ allowH2: true, useH2c: true } as ConstructorParameters<typeof Agent>[0]);
  cleanups.push(() => agent.close());
  const res = await request(`${url}/h2path?x=1`, { dispatcher: agent, method: 'POST', body: 'hello' });
  assert.equal(res.statusCode, 200);
  const body = (await res.body.json()) as { url: string; body: string; headers: Record<string, string> };
  assert.equal(body.url, '/h2path?x=1');
  assert.equal(body.body, 'hello');
  assert.ok(body.headers['host'], 'the :authority becomes Host for an HTTP/1.1 origin');
});

test('HTTP/2 end to end (h2c client → Weir → h2c upstream): te: trailers forwarded, trailers kept', async () => {
  const { startH2Origin } = await import('../helpers/origin.ts');
  const origin = await startH2Origin();
  const { weir, url } = await startWeirWith(`
listeners { listener "main" { address "127.0.0.1:0"; protocol "h2c"; } }
routes { route "grpc" { matches { path-prefix "/"; }; upstream "h2"; } }
upstreams { upstream "h2" { target "127.0.0.1:${origin.port}"; protocol "h2"; } }`);
  cleanups.push(() => origin.close(), () => weir.close());
  const agent = new Agent({ allowH2: true, useH2c: true } as ConstructorParameters<typeof Agent>[0]);
  cleanups.push(() => agent.close());
  const res = await request(`${url}/pkg.Service/Method`, { dispatcher: agent, method: 'POST', body: 'grpc-frame', headers: { te: 'trailers', 'content-type': 'application/grpc' } });
  assert.equal(res.statusCode, 200);
  const body = (await res.body.json()) as { path: string; te: string | null; body: string };
  assert.equal(body.path, '/pkg.Service/Method');
  assert.equal(body.te, 'trailers', 'te: trailers reaches the upstream (gRPC needs it)');
  assert.equal(body.body, 'grpc-frame');
  assert.equal(res.headers['x-h2-origin'], 'yes');
  assert.deepEqual(res.trailers, { 'x-checksum': '10' });
});

test('circuit breaker: after repeated connect failures every target is ejected → 503 WEIR_ERR_CIRCUIT_OPEN, fast', async () => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const dead = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const { weir, url } = await startWeirWith(basicConfig(dead));
  cleanups.push(() => weir.close());
  const codes: string[] = [];
  for (let i = 0; i < 7; i++) {
    const res = await request(`${url}/x`);
    codes.push(((await res.body.json()) as { error: { code: string } }).error.code);
  }
  assert.deepEqual(codes.slice(0, 5), Array(5).fill('WEIR_ERR_UPSTREAM_CONNECT'), 'five connect failures eject the only target');
  assert.deepEqual(codes.slice(5), ['WEIR_ERR_CIRCUIT_OPEN', 'WEIR_ERR_CIRCUIT_OPEN']);
  const res = await request(`${url}/x`);
  assert.equal(res.statusCode, 503);
  await res.body.dump();
});

test('readiness: 503 WEIR_ERR_SHUTTING_DOWN while draining', async () => {
  const origin = await startOrigin();
  const { weir, url } = await startWeirWith(basicConfig(origin.port, { routes: 'route "ready" { priority 100; matches { path "/_/ready"; }; builtin-handler "ready"; }' }));
  cleanups.push(() => origin.close(), () => weir.close());
  const ok = await request(`${url}/_/ready`);
  assert.equal(ok.statusCode, 200);
  await ok.body.dump();
  weir.core.draining = true;
  const draining = await request(`${url}/_/ready`);
  assert.equal(draining.statusCode, 503);
  assert.equal(((await draining.body.json()) as { error: { code: string } }).error.code, 'WEIR_ERR_SHUTTING_DOWN');
  weir.core.draining = false;
});
