/**
 * Framing cases the corpus can't show in one write: a chunked body that turns bad after the
 * request was forwarded, HTTP/2 Host vs :authority, and CONNECT when a listener allows it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startRawOrigin, type RawOrigin } from './raw-origin.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

let origin: RawOrigin;
let weir: Weir;
let echo: net.Server;
let echoPort = 0;

before(async () => {
  origin = await startRawOrigin();
  echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as AddressInfo).port;
  ({ weir } = await startWeirWith(`schema-version "1.0"
listeners {
    listener "h1" { address "127.0.0.1:0"; protocol "http"; }
    listener "h2c" { address "127.0.0.1:0"; protocol "h2c"; }
    listener "tunnel" { address "127.0.0.1:0"; protocol "http"; allow-connect #true; }
}
routes {
    route "tunnel" {
        priority 10
        matches { host "tunnel.test"; }
        upstream "echo"
    }
    route "all" {
        matches { path-prefix "/"; }
        upstream "origin"
    }
}
upstreams {
    upstream "origin" { target "127.0.0.1:${origin.port}" }
    upstream "echo" { target "127.0.0.1:${echoPort}" }
}
system { graceful-shutdown-timeout-secs 1 }
`));
});

after(async () => {
  await weir?.close();
  await origin?.close();
  echo?.close();
});

async function until(cond: () => boolean, what: string): Promise<void> {
  // Bounded: 200 × 10 ms.
  for (let i = 0; i < 200; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('a chunk that turns bad after forwarding started: 400 to the client, upstream request aborted, its connection not reused', async () => {
  const port = weir.address('h1').port;
  const s = net.connect(port, '127.0.0.1');
  await new Promise((r) => s.once('connect', r));
  const got: Buffer[] = [];
  s.on('data', (c: Buffer) => got.push(c));
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  const connsBefore = origin.connections.length;
  s.write('POST /stream HTTP/1.1\r\nHost: weir.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
  await until(() => origin.rawText().includes('hello'), 'the first chunk at the origin');
  const upstreamConn = origin.connections.findIndex((c) => Buffer.concat(c).toString('latin1').includes('POST /stream'));
  s.write('zz\r\nbad\r\n0\r\n\r\n');
  await closed;
  assert.match(Buffer.concat(got).toString('latin1'), /^HTTP\/1\.1 400 /);
  await until(() => origin.closed[upstreamConn] === true, 'the upstream connection to close');
  assert.ok(!origin.requests.some((q) => q.url === '/stream'), 'the origin never saw a complete request');
  // The next request goes on a fresh upstream connection.
  const res = await request(`${weir.url('h1')}/after`);
  await res.body.dump();
  const after = origin.requests.find((q) => q.url === '/after')!;
  assert.notEqual(after.connection, upstreamConn);
  assert.ok(origin.connections.length > connsBefore);
});

function h2get(headers: http2.OutgoingHttpHeaders): Promise<number> {
  const session = http2.connect(`http://127.0.0.1:${weir.address('h2c').port}`);
  return new Promise<number>((resolve, reject) => {
    const r = session.request(headers);
    r.on('response', (h) => resolve(Number(h[':status'])));
    r.on('error', reject);
    r.resume();
    r.end();
  }).finally(() => session.close());
}

test('HTTP/2: Host that differs from :authority → 400; the same name → forwarded', async () => {
  assert.equal(await h2get({ ':path': '/h2-mismatch', ':authority': 'a.test', host: 'b.test' }), 400);
  assert.ok(!origin.requests.some((q) => q.url === '/h2-mismatch'));
  assert.equal(await h2get({ ':path': '/h2-same', ':authority': 'a.test', host: 'A.test' }), 200);
  assert.equal(origin.requests.find((q) => q.url === '/h2-same')!.headers['host'], 'A.test', 'the Host field goes on as sent');
});

test('CONNECT is refused (405) on a listener without allow-connect', async () => {
  const s = net.connect(weir.address('h1').port, '127.0.0.1');
  const data: Buffer[] = [];
  s.on('data', (c: Buffer) => data.push(c));
  s.write('CONNECT tunnel.test:443 HTTP/1.1\r\nHost: tunnel.test:443\r\n\r\n');
  await new Promise((r) => s.once('close', r));
  assert.match(Buffer.concat(data).toString(), /^HTTP\/1\.1 405 /);
});

test('allow-connect: CONNECT tunnels to the upstream of the route matching its authority', async () => {
  const s = net.connect(weir.address('tunnel').port, '127.0.0.1');
  let buf = '';
  s.on('data', (c: Buffer) => (buf += c.toString('latin1')));
  s.write('CONNECT tunnel.test:443 HTTP/1.1\r\nHost: tunnel.test:443\r\n\r\n');
  await until(() => buf.includes('\r\n\r\n'), 'the CONNECT reply');
  assert.match(buf, /^HTTP\/1\.1 200 /);
  s.write('ping through the tunnel');
  await until(() => buf.includes('ping through the tunnel'), 'the echo');
  s.destroy();
  // CONNECT has no path: routes with path conditions (the catch-all "/") never match it,
  // so an authority no host-only route names is refused (404), not tunnelled.
  const r = net.connect(weir.address('tunnel').port, '127.0.0.1');
  let out = '';
  r.on('data', (c: Buffer) => (out += c.toString('latin1')));
  r.write('CONNECT elsewhere.test:22 HTTP/1.1\r\nHost: elsewhere.test:22\r\n\r\n');
  await new Promise((res) => r.once('close', res));
  assert.match(out, /^HTTP\/1\.1 404 /);
});
