/**
 * WebSocket upgrades and CONNECT tunnels run the same pipeline as every request:
 * select-upstream (a route filter, then the upstream's balancer plugin), retries of
 * connect failures, on-log with the bytes relayed and the status, and the request metrics.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { buildFirstPartyPlugins } from '../../plugins/build.ts';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';
import type { Phase, RequestContext } from '../../host/src/pipeline/phases.ts';
import { NO_BODY } from '../../host/src/pipeline/phases.ts';

let weir: Weir;
const origins: Array<{ name: string; port: number; server: http.Server; wss: WebSocketServer }> = [];
const logged: Array<{ route: string; status: number | undefined; bytesIn: number; bytesOut: number; target: string | undefined; error: string | undefined }> = [];
let deadPort = 0;

/** An origin that greets each WebSocket with its name and answers plain GETs with it. */
async function origin(name: string): Promise<(typeof origins)[number]> {
  const server = http.createServer((_req, res) => res.end(`plain:${name}`));
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    ws.send(`hello from ${name}`);
    ws.on('message', (d) => ws.send(`${name}:${d}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { name, port: (server.address() as AddressInfo).port, server, wss };
}

before(async () => {
  await buildFirstPartyPlugins();
  origins.push(await origin('a'), await origin('b'));
  const dead = net.createServer();
  await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
  deadPort = (dead.address() as AddressInfo).port;
  await new Promise<void>((r) => dead.close(() => r())); // nothing listens there now
  const [a, b] = origins;
  const kdl = `schema-version "1.0"
listeners {
    listener "main" { address "127.0.0.1:0"; protocol "http"; }
    listener "tunnel" { address "127.0.0.1:0"; protocol "http"; allow-connect #true; }
}
filters { filter "pick" { type "headers"; request { set "x-unused" "1"; } } }
routes {
    route "pick" { matches { path-prefix "/pick"; }; upstream "pair"; filters "pick"; policies { websocket #true; } }
    route "lb" { matches { path-prefix "/lb"; }; upstream "lb"; policies { websocket #true; } }
    route "retry" {
        matches { path-prefix "/retry"; }
        upstream "half-dead"
        policies { websocket #true; retry { max-attempts 2; backoff-ms 1; max-backoff-ms 2; retry-on "connect-failure"; } }
    }
    route "tunnel" { matches { host "tunnel.test"; }; upstream "pair"; filters "pick"; }
}
upstreams {
    upstream "pair" { target "127.0.0.1:${a!.port}"; target "127.0.0.1:${b!.port}"; }
    upstream "lb" { target "127.0.0.1:${a!.port}"; target "127.0.0.1:${b!.port}"; load-balancing "p2c"; }
    upstream "half-dead" { target "127.0.0.1:${deadPort}"; target "127.0.0.1:${a!.port}"; }
}
system { graceful-shutdown-timeout-secs 1 }
`;
  ({ weir } = await startWeirWith(kdl, {
    extendFilters: (registry) => {
      // "pick" chooses the target named by x-pick (a, b) on select-upstream and records
      // what on-log sees, as a plugin would.
      const builtin = registry.get('headers')!;
      registry.register('headers', (cfg, env) => (cfg.name !== 'pick' ? builtin(cfg, env) : ({
        name: cfg.name,
        kind: 'test:pick',
        failureMode: 'closed',
        requestBody: NO_BODY,
        responseBody: NO_BODY,
        selectUpstream: (ctx: RequestContext) => {
          const want = ctx.request.headers['x-pick'];
          return want === 'b' ? 1 : want === 'a' ? 0 : undefined;
        },
        onLog: (ctx: RequestContext) => {
          logged.push({ route: ctx.routeName, status: ctx.response?.status, bytesIn: ctx.bytesIn, bytesOut: ctx.bytesOut, target: ctx.upstream?.target, error: ctx.error?.code });
        },
      }) satisfies Phase));
    },
  }));
});

after(async () => {
  await weir?.close();
  for (const o of origins) {
    for (const c of o.wss.clients) c.terminate();
    o.wss.close();
    o.server.closeAllConnections();
    o.server.close();
  }
});

function open(path: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; greeting: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${weir.url().replace('http', 'ws')}${path}`, { headers });
    ws.once('message', (d) => resolve({ ws, greeting: String(d) }));
    ws.once('error', reject);
  });
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > 5000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

test("a route filter's select-upstream picks the WebSocket's target; on-log sees status, target and bytes", async () => {
  for (const name of ['b', 'a', 'b']) {
    const before = logged.length;
    const { ws, greeting } = await open('/pick/x', { 'x-pick': name });
    assert.equal(greeting, `hello from ${name}`, `x-pick: ${name} reaches origin ${name}`);
    const echo = new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
    ws.send('ping');
    assert.equal(await echo, `${name}:ping`);
    ws.close();
    await until(() => logged.length > before, 'on-log');
    const entry = logged.at(-1)!;
    assert.equal(entry.route, 'pick');
    assert.equal(entry.status, 101);
    assert.equal(entry.target, `127.0.0.1:${origins[name === 'a' ? 0 : 1]!.port}`);
    assert.equal(entry.error, undefined);
    assert.ok(entry.bytesIn > 0 && entry.bytesOut > 0, `bytes relayed: in ${entry.bytesIn}, out ${entry.bytesOut}`);
  }
  const text = await weir.metrics.registry.metrics();
  assert.match(text, /weir_requests_total\{route="pick",method="GET",status="101"\} 3/);
});

test("the upstream's load-balancing plugin (p2c) chooses a WebSocket's target", async () => {
  const calls = async (): Promise<number> => Number(/weir_plugin_calls_total\{plugin="lb:p2c",hook="select-upstream"\} (\d+)/.exec(await weir.metrics.registry.metrics())?.[1] ?? 0);
  const before = await calls();
  const seen = new Set<string>();
  for (let i = 0; i < 20; i++) {
    const { ws, greeting } = await open('/lb/x');
    seen.add(greeting);
    ws.close();
  }
  assert.equal((await calls()) - before, 20, 'the balancer ran once per upgrade');
  assert.deepEqual([...seen].sort(), ['hello from a', 'hello from b']);
});

test('a WebSocket upgrade whose first target refuses the connection is retried on the next (retry-on "connect-failure")', async () => {
  const { ws, greeting } = await open('/retry/x');
  assert.equal(greeting, 'hello from a');
  ws.close();
});

test('CONNECT: select-upstream picks the tunnel target and on-log sees the tunnel', async () => {
  const before = logged.length;
  const s = net.connect(weir.address('tunnel').port, '127.0.0.1');
  let buf = '';
  s.on('data', (c: Buffer) => (buf += c.toString('latin1')));
  s.write('CONNECT tunnel.test:443 HTTP/1.1\r\nHost: tunnel.test:443\r\nx-pick: b\r\n\r\n');
  await until(() => buf.includes('\r\n\r\n'), 'the CONNECT reply');
  assert.match(buf, /^HTTP\/1\.1 200 /);
  s.write('GET / HTTP/1.1\r\nhost: b\r\nconnection: close\r\n\r\n');
  await until(() => buf.includes('plain:b'), 'the reply of origin b through the tunnel');
  s.destroy();
  await until(() => logged.length > before, 'on-log');
  const entry = logged.at(-1)!;
  assert.equal(entry.route, 'tunnel');
  assert.equal(entry.status, 200);
  assert.equal(entry.target, `127.0.0.1:${origins[1]!.port}`);
  assert.ok(entry.bytesIn > 0 && entry.bytesOut > 0);
});
