/**
 * HTTP/1.1 over TLS goes through the h2 server's http1 fallback: check that the same edge
 * rules apply there (strict framing, header timeout, WebSocket), and WebSocket on h2c.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { startWeirWith } from '../helpers/weir.ts';
import { createPki, type Pki } from '../helpers/tls.ts';
import type { Weir } from '../../host/src/weir.ts';
import { wire } from './wire.ts';

let pki: Pki;
let weir: Weir;
let origin: http.Server;
let wss: WebSocketServer;
let seen = 0;

before(async () => {
  pki = createPki();
  const cert = pki.server('srv', ['weir.test', '127.0.0.1']);
  origin = http.createServer((_req, res) => {
    seen++;
    res.writeHead(200, { 'content-length': '2' });
    res.end('ok');
  });
  wss = new WebSocketServer({ server: origin });
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`echo:${d}`)));
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const port = (origin.address() as AddressInfo).port;
  ({ weir } = await startWeirWith(`schema-version "1.0"
listeners {
    listener "tls" {
        address "127.0.0.1:0"
        protocol "https"
        tls { cert-file "${cert.cert}"; key-file "${cert.key}"; }
    }
    listener "h2c" { address "127.0.0.1:0"; protocol "h2c"; }
}
limits { header-timeout-ms 400; }
routes {
    route "all" {
        matches { path-prefix "/"; }
        upstream "origin"
        policies { websocket #true; }
    }
}
upstreams { upstream "origin" { target "127.0.0.1:${port}" } }
system { graceful-shutdown-timeout-secs 1 }
`));
});

after(async () => {
  await weir?.close();
  for (const c of wss.clients) c.terminate();
  wss.close();
  origin.closeAllConnections();
  origin.close();
});

const tlsOpts = () => ({ tls: { ca: pki.caPem, servername: 'weir.test', ALPNProtocols: ['http/1.1'] } });

test('h1 over TLS: ambiguous framing is refused (400, close, nothing upstream)', async () => {
  const before = seen;
  const r = await wire(weir.address('tls').port, 'POST / HTTP/1.1\r\nHost: weir.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', tlsOpts());
  assert.equal(r.responses[0]?.status, 400);
  assert.ok(r.closed);
  const te = await wire(weir.address('tls').port, 'POST / HTTP/1.1\r\nHost: weir.test\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n', tlsOpts());
  assert.equal(te.responses[0]?.status, 400);
  assert.equal(seen, before);
});

test('h1 over TLS: header timeout → 408', async () => {
  const r = await wire(weir.address('tls').port, 'GET / HTTP/1.1\r\nHost: weir.test\r\nX-Slow: ', { ...tlsOpts(), timeoutMs: 5000 });
  assert.equal(r.responses[0]?.status, 408);
  assert.ok(r.closed);
});

test('h1 over TLS: an h2c upgrade is served as a plain request', async () => {
  const r = await wire(weir.address('tls').port, 'GET /u HTTP/1.1\r\nHost: weir.test\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n', { ...tlsOpts(), expect: 1 });
  assert.equal(r.responses[0]?.status, 200);
  assert.doesNotMatch(r.responses[0]!.head, /^HTTP\/1\.1 101/);
});

async function echoOnce(url: string, opts: object): Promise<string> {
  const ws = new WebSocket(url, opts);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const msg = new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
  ws.send('hi');
  const out = await msg;
  ws.close();
  return out;
}

test('WebSocket through the https listener (wss) and through the h2c listener', async () => {
  assert.equal(await echoOnce(`wss://127.0.0.1:${weir.address('tls').port}/ws`, { ca: pki.caPem, servername: 'weir.test' }), 'echo:hi');
  assert.equal(await echoOnce(`ws://127.0.0.1:${weir.address('h2c').port}/ws`, {}), 'echo:hi');
});
