/** WebSocket proxying end to end with the `ws` package on both sides. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';
import type { Phase } from '../../host/src/pipeline/phases.ts';
import { NO_BODY } from '../../host/src/pipeline/phases.ts';

let weir: Weir;
let originPort = 0;
let originServer: http.Server;
let wss: WebSocketServer;
const upgrades: http.IncomingHttpHeaders[] = [];

before(async () => {
  originServer = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-length': '2' });
    res.end('ok');
  });
  wss = new WebSocketServer({ server: originServer, maxPayload: 64 * 1024 * 1024, handleProtocols: (p) => (p.has('chat') ? 'chat' : false) });
  wss.on('connection', (ws, req) => {
    upgrades.push(req.headers);
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? '' : data.toString();
      // "big:N" asks the origin for an N-byte message (the origin→client direction limit).
      if (text.startsWith('big:')) return ws.send(Buffer.alloc(Number(text.slice(4)), 0x61));
      ws.send(data, { binary: isBinary });
    });
  });
  await new Promise<void>((r) => originServer.listen(0, '127.0.0.1', r));
  originPort = (originServer.address() as AddressInfo).port;
  const kdl = `schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; protocol "http"; } }
limits {
    websocket-idle-timeout-secs 1
    websocket-max-message-bytes 4096
}
filters {
    filter "tag" { type "headers"; request { set "x-weir-tag" "seen-by-chain"; } }
    filter "deny" { type "headers"; request { set "x-unused" "1"; } }
}
routes {
    route "ws" {
        matches { path-prefix "/ws"; }
        upstream "origin"
        filters "tag"
        policies { websocket #true; }
    }
    route "deny" {
        matches { path-prefix "/deny"; }
        upstream "origin"
        filters "deny"
        policies { websocket #true; }
    }
    route "plain" {
        matches { path-prefix "/"; }
        upstream "origin"
    }
}
upstreams { upstream "origin" { target "127.0.0.1:${originPort}" } }
system { graceful-shutdown-timeout-secs 1 }
`;
  ({ weir } = await startWeirWith(kdl, {
    extendFilters: (registry) => {
      // The config schema only knows the shipped filter types, so the test swaps the factory
      // of "headers" for the filter named "deny": it refuses upgrades by a local reply from
      // on-request-headers, as a plugin would.
      const builtin = registry.get('headers')!;
      registry.register('headers', (cfg, env) => (cfg.name !== 'deny' ? builtin(cfg, env) : ({
        name: cfg.name,
        kind: 'test:deny',
        failureMode: 'closed',
        requestBody: NO_BODY,
        responseBody: NO_BODY,
        onRequestHeaders: (ctx) => (ctx.request.headers['upgrade'] ? { status: 403, headers: { 'x-denied-by': 'test-deny' }, body: 'no websockets for you' } : undefined),
      }) satisfies Phase));
    },
  }));
});

after(async () => {
  await weir?.close();
  for (const c of wss.clients) c.terminate();
  wss.close();
  originServer.closeAllConnections();
  await new Promise<void>((r) => originServer.close(() => r()));
});

function wsUrl(path: string): string {
  return `${weir.url().replace('http', 'ws')}${path}`;
}

function open(path: string, protocols?: string[]): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(path), protocols, { maxPayload: 64 * 1024 * 1024 });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data, binary) => resolve({ data: data as Buffer, binary })));
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => ws.once('close', (code) => resolve(code)));
}

function refused(path: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(path));
    ws.once('open', () => reject(new Error('upgrade should have been refused')));
    ws.once('error', () => {});
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
  });
}

test('messages are relayed both ways; the subprotocol is negotiated end to end', async () => {
  const ws = await open('/ws/echo?room=1', ['chat']);
  assert.equal(ws.protocol, 'chat');
  for (let i = 0; i < 5; i++) {
    const reply = nextMessage(ws);
    ws.send(`hello ${i}`);
    const m = await reply;
    assert.equal(m.data.toString(), `hello ${i}`);
    assert.equal(m.binary, false);
  }
  const bin = nextMessage(ws);
  ws.send(Buffer.from([0, 1, 2, 255]));
  const b = await bin;
  assert.equal(b.binary, true);
  assert.deepEqual([...b.data], [0, 1, 2, 255]);
  const c = closed(ws);
  ws.close(1000, 'bye');
  assert.equal(await c, 1000);
});

test("the route's on-request-headers filters see the upgrade request", async () => {
  const before = upgrades.length;
  const ws = await open('/ws/tagged');
  ws.close();
  const h = upgrades[before]!;
  assert.equal(h['x-weir-tag'], 'seen-by-chain', 'a header set by the filter chain reaches the origin');
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['via'], '1.1 weir');
  assert.equal(h['upgrade'], 'websocket');
  assert.match(String(h['x-request-id']), /^[0-9a-f-]{36}$/);
});

test('a filter chain reply refuses the upgrade', async () => {
  const before = upgrades.length;
  const r = await refused('/deny/x');
  assert.equal(r.status, 403);
  assert.equal(r.headers['x-denied-by'], 'test-deny');
  assert.equal(r.body, 'no websockets for you');
  assert.equal(upgrades.length, before, 'nothing reached the origin');
});

test('a route without `websocket #true` refuses the upgrade', async () => {
  const before = upgrades.length;
  const r = await refused('/plain');
  assert.equal(r.status, 400);
  assert.equal(JSON.parse(r.body).error.code, 'WEIR_ERR_UPGRADE_REFUSED');
  assert.equal(upgrades.length, before);
});

test('a message over websocket-max-message-bytes closes the connection with 1009 (client → origin)', async () => {
  const ws = await open('/ws/big');
  const c = closed(ws);
  ws.on('error', () => {});
  // Fragmented: the limit is per message, not per frame.
  ws.send(Buffer.alloc(3000, 1), { fin: false, binary: true });
  ws.send(Buffer.alloc(3000, 1), { fin: true, binary: true });
  assert.equal(await c, 1009);
});

test('a message over websocket-max-message-bytes closes the connection with 1009 (origin → client)', async () => {
  const ws = await open('/ws/big2');
  const ok = nextMessage(ws);
  ws.send('big:4000');
  assert.equal((await ok).data.length, 4000, 'under the limit passes');
  const c = closed(ws);
  ws.on('error', () => {});
  ws.send('big:5000');
  assert.equal(await c, 1009);
});

test('an idle WebSocket is closed after websocket-idle-timeout-secs (1001)', async () => {
  const ws = await open('/ws/idle');
  ws.on('error', () => {});
  assert.equal(await closed(ws), 1001);
});
