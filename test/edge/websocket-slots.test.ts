/**
 * WebSocket upgrades give their target slot (and the client's admission) back however they
 * end. Both found by the HTTP/1.1 fuzzer (test/fuzz):
 * - a client that leaves while the origin has not answered its upgrade: each left the
 *   target's in-flight count up by one, until the pool looked full and every request waited
 *   for the queue timeout;
 * - an origin that refuses the upgrade (any status but 101) and keeps its connection alive:
 *   the relayed reply never ended, so the client and the slot waited on the origin.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { startWeirWith } from '../helpers/weir.ts';
import type { Weir } from '../../host/src/weir.ts';

const cleanups: Array<() => Promise<void> | void> = [];

async function targetInFlight(weir: Weir): Promise<number> {
  const s = (await (await fetch(`${weir.url()}/_/status`)).json()) as { upstreams: Array<{ targets: Array<{ inFlight: number }> }> };
  return s.upstreams[0]!.targets[0]!.inFlight;
}

async function weirFor(originPort: number): Promise<Weir> {
  const { weir } = await startWeirWith(`schema-version "1.0"
listeners { listener "main" { address "127.0.0.1:0"; protocol "http"; } }
routes {
    route "status" { priority 10; matches { path "/_/status"; }; builtin-handler "status"; }
    route "ws" { matches { path-prefix "/"; }; upstream "origin"; policies { websocket #true; } }
}
upstreams { upstream "origin" { target "127.0.0.1:${originPort}"; } }
`);
  cleanups.push(() => weir.close());
  return weir;
}

const UPGRADE = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`;
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('clients that leave before the origin answers their upgrade free the target', async () => {
  // The origin accepts and never answers, so every upgrade waits for a response head.
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.resume();
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => {
    for (const s of sockets) s.destroy();
    silent.close(() => r());
  }));
  const weir = await weirFor((silent.address() as AddressInfo).port);
  const port = Number(new URL(weir.url()).port);
  const inFlight = (): Promise<number> => targetInFlight(weir);
  const n = 5;
  for (let i = 0; i < n; i++) {
    const c = net.connect({ host: '127.0.0.1', port });
    c.on('error', () => {});
    c.write(UPGRADE(`/chat/${i}`));
    c.end();
  }
  // Each upgrade reaches the origin, then its client is gone.
  for (let i = 0; i < 200 && sockets.size < n; i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(sockets.size, n, 'every upgrade was dialled');
  let left = await inFlight();
  for (let i = 0; i < 200 && left > 0; i++) {
    await new Promise((r) => setTimeout(r, 25));
    left = await inFlight();
  }
  assert.equal(left, 0, 'the target has no exchange in flight once the clients left');
  // And the upstream connections of those upgrades were closed.
  for (let i = 0; i < 200 && [...sockets].some((s) => !s.destroyed && !s.readableEnded); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok([...sockets].every((s) => s.destroyed || s.readableEnded), 'the dialled connections were closed');
});

for (const framing of ['content-length', 'chunked'] as const) {
  test(`a refused upgrade (426, ${framing}) from an origin that keeps its connection alive ends at the reply's end`, async () => {
    const body = 'upgrade refused here';
    const chunked = `${body.length.toString(16)}\r\n${body}\r\n0\r\nx-trailer: t\r\n\r\n`;
    const origin = net.createServer((s) => {
      s.on('error', () => {});
      s.once('data', () => {
        s.write(framing === 'chunked'
          ? `HTTP/1.1 426 Upgrade Required\r\ntransfer-encoding: chunked\r\nconnection: keep-alive\r\n\r\n${chunked.slice(0, 9)}`
          : `HTTP/1.1 426 Upgrade Required\r\ncontent-length: ${body.length}\r\nconnection: keep-alive\r\n\r\n${body.slice(0, 5)}`);
        // The rest a little later, in another packet; then the connection stays open.
        setTimeout(() => s.write(framing === 'chunked' ? chunked.slice(9) : body.slice(5)), 50);
      });
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const open = new Set<net.Socket>();
    origin.on('connection', (s) => open.add(s));
    cleanups.push(() => new Promise<void>((r) => {
      for (const s of open) s.destroy();
      origin.close(() => r());
    }));
    const weir = await weirFor((origin.address() as AddressInfo).port);
    const port = Number(new URL(weir.url()).port);
    const got = await new Promise<string>((resolve, reject) => {
      let data = '';
      const c = net.connect({ host: '127.0.0.1', port }, () => c.write(UPGRADE('/chat')));
      c.on('data', (d: Buffer) => (data += d.toString('latin1')));
      c.on('close', () => resolve(data));
      c.on('error', reject);
      // The origin would keep it open for ever: only Weir can close it.
      setTimeout(() => reject(new Error(`still open after 20 s; got ${JSON.stringify(data)}`)), 20_000).unref();
    });
    assert.match(got, /^HTTP\/1\.1 426 /);
    assert.ok(got.endsWith(framing === 'chunked' ? chunked : body), `the whole reply was relayed: ${JSON.stringify(got)}`);
    let left = await targetInFlight(weir);
    for (let i = 0; i < 200 && left > 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
      left = await targetInFlight(weir);
    }
    assert.equal(left, 0);
  });
}
